//! The per-call policy work: the rule for a path, and the rule against a principal.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use examples::{AdminDesk, OrderBook};
use oauth_grpc::{PolicySet, Principal};

fn lookup(c: &mut Criterion) {
    let policies = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();
    let principal = Principal::builder()
        .subject("bench")
        .scopes(["orders:read", "orders:write", "openid", "profile", "email"])
        .build();
    let mut group = c.benchmark_group("policy");
    group.bench_function("rule_for (hit)", |b| {
        b.iter(|| policies.rule_for(black_box("/orders.v1.Orders/CancelOrder")))
    });
    group.bench_function("rule_for (miss)", |b| {
        b.iter(|| policies.rule_for(black_box("/orders.v1.Orders/NoSuchMethod")))
    });
    let rule = policies
        .rule_for("/orders.v1.Orders/CancelOrder")
        .expect("rule");
    group.bench_function("evaluate (all of, 2 scopes)", |b| {
        b.iter(|| black_box(rule).evaluate(Some(black_box(&principal))))
    });
    group.bench_function("rule_for + evaluate", |b| {
        b.iter(|| {
            policies
                .rule_for(black_box("/orders.v1.Orders/GetOrder"))
                .map(|rule| rule.evaluate(Some(&principal)))
        })
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
