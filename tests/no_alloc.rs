//! The per-call policy path — rule lookup by request path and rule evaluation — allocates
//! nothing. Shown by counting allocations, not by timing.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use examples::{AdminDesk, OrderBook};
use oauth_grpc::{PolicySet, Principal};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn lookup_and_evaluation_do_not_allocate() {
    let policies = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>()
        .public_service("grpc.health.v1.Health");
    let principal = Principal::builder()
        .subject("alice")
        .scopes(["orders:read", "orders:write"])
        .build();
    let paths = [
        "/orders.v1.Orders/CreateOrder",
        "/orders.v1.Orders/GetOrder",
        "/orders.v1.Orders/CancelOrder",
        "/orders.v1.OrdersAdmin/PurgeCancelled",
        "/grpc.health.v1.Health/Check",
        "/orders.v1.Orders/NoSuchMethod",
    ];
    // The counter works: building a principal allocates.
    let before = allocations();
    let other = Principal::builder().subject("bob").build();
    assert!(allocations() > before, "the counting allocator counts");
    drop(other);

    let before = allocations();
    let mut decided = 0;
    for _ in 0..1000 {
        for path in paths {
            if let Some(rule) = policies.rule_for(std::hint::black_box(path)) {
                decided += usize::from(rule.evaluate(Some(&principal)).is_ok());
            }
        }
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "{} allocations in 6,000 lookups",
        after - before
    );
    assert_eq!(
        decided, 3000,
        "CreateOrder, GetOrder and the public health check are allowed"
    );
}
