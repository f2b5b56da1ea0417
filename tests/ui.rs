//! The compile-time contract: every supported form compiles, every mistake is a compile
//! error with a reviewed message (`ui/fail/*.stderr`). Regenerate with `TRYBUILD=overwrite`
//! and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
