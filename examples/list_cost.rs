//! What a send's list check costs with 10 entries and with 100,000 (SPEC
//! §10: the lists must not slow a send down as they grow).
//!
//! ```sh
//! cargo run --release --example list_cost
//! ```
//!
//! Prints nanoseconds per check (number, prefixes, country and address)
//! for each list size.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use phoneauth::defence::ListSet;
use phoneauth::domain::{Mobile, MobilePolicy};
use phoneauth::users::ListEntry;

fn entries(n: u32) -> Vec<ListEntry> {
    (0..n)
        .map(|i| {
            let (kind, value) = match i % 4 {
                0 => ("prefix", format!("8617{i:07}")),
                1 => ("network", format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255)),
                2 => ("number", format!("+86170{i:08}")),
                _ => ("network", format!("2001:db8:{:x}::/48", i & 0xffff)),
            };
            ListEntry {
                list: "block".into(),
                kind: kind.into(),
                value,
            }
        })
        .collect()
}

fn main() {
    let policy = MobilePolicy::default();
    let numbers: Vec<Mobile> = (0..1_000u32)
        .map(|i| Mobile::parse(&format!("1380000{i:04}"), &policy).expect("mobile"))
        .collect();
    let addresses: Vec<IpAddr> = (0..1_000u32)
        .map(|i| IpAddr::from([192, 0, (i >> 8) as u8, i as u8]))
        .collect();
    for n in [10u32, 100_000] {
        let set = ListSet::new(&entries(n));
        let rounds = 1_000;
        let started = Instant::now();
        let mut hits = 0;
        for _ in 0..rounds {
            for (m, ip) in numbers.iter().zip(&addresses) {
                hits += usize::from(black_box(&set).blocks_number(black_box(m)));
                hits += usize::from(set.blocks_address(black_box(*ip)));
            }
        }
        let checks = rounds * numbers.len();
        let ns = started.elapsed().as_nanos() as f64 / checks as f64;
        println!("{n:>7} entries: {ns:.0} ns per send check (number + address), {hits} hits");
    }
}
