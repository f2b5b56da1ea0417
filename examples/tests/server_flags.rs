//! `orders-server`'s key-source timings: each flag is documented in `--help`, takes a
//! humantime duration, and refuses a bad value or an inverted refresh range with a message
//! that names the flag, before anything is fetched.

#![allow(clippy::expect_used)]

use std::process::{Command, Output};

fn orders_server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "https://idp.invalid/",
            "--audience",
            "orders-api",
        ])
        .args(args)
        .env_clear()
        .output()
        .expect("orders-server runs")
}

#[test]
fn help_lists_every_timing_with_its_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .arg("--help")
        .output()
        .expect("orders-server runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env, default) in [
        ("--jwks-refresh-min", "ORDERS_JWKS_REFRESH_MIN", "1m"),
        ("--jwks-refresh-max", "ORDERS_JWKS_REFRESH_MAX", "24h"),
        (
            "--unknown-kid-cooldown",
            "ORDERS_UNKNOWN_KID_COOLDOWN",
            "30s",
        ),
        ("--max-staleness", "ORDERS_MAX_STALENESS", "24h"),
        ("--leeway", "ORDERS_LEEWAY", "60s"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(help.contains(env), "{env} missing from --help");
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{flag}'s default {default} missing from --help"
        );
    }
}

#[test]
fn a_bad_duration_names_the_flag() {
    let out = orders_server(&["--leeway", "ten seconds"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--leeway"), "{stderr}");
    assert!(stderr.contains("ten seconds"), "{stderr}");
}

#[test]
fn an_inverted_refresh_range_is_refused_before_any_fetch() {
    let out = orders_server(&["--jwks-refresh-min", "2h", "--jwks-refresh-max", "5m"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--jwks-refresh-min (2h) is longer than --jwks-refresh-max (5m)"),
        "{stderr}"
    );
}

#[test]
fn an_environment_variable_sets_a_timing() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "https://idp.invalid/",
            "--audience",
            "orders-api",
        ])
        .env_clear()
        .env("ORDERS_UNKNOWN_KID_COOLDOWN", "soon")
        .output()
        .expect("orders-server runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--unknown-kid-cooldown"), "{stderr}");
}
