//! The compile-time contract: every supported form compiles, every mistake is a compile
//! error with a reviewed message (`tests/ui/fail/*.stderr`). Regenerate with `TRYBUILD=overwrite`
//! and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
