//! The operator's block and safe lists (SPEC §10): entries checked and put
//! in their canonical form, and the compiled set every send is checked
//! against in memory.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::domain::{Mobile, MobilePolicy};
use crate::users::ListEntry;

pub const LISTS: [&str; 2] = ["block", "safe"];
pub const KINDS: [&str; 4] = ["number", "prefix", "country", "network"];

/// An entry as an operator wrote it, checked and made canonical: numbers in
/// E.164 (from any spelling the mobile rules accept), prefixes as E.164
/// digits, countries as upper-case ISO alpha-2, networks as CIDR with the
/// host bits cleared. The safe list holds numbers and prefixes only.
pub fn parse_entry(
    list: &str,
    kind: &str,
    value: &str,
    policy: &MobilePolicy,
) -> Result<ListEntry, String> {
    let list = list.trim().to_ascii_lowercase();
    if !LISTS.contains(&list.as_str()) {
        return Err(format!("unknown list {list:?}: block or safe"));
    }
    let kind = kind.trim().to_ascii_lowercase();
    let value = value.trim();
    let value = match kind.as_str() {
        "number" => Mobile::parse(value, policy)
            .map_err(|e| format!("{value:?} is not an accepted mobile number: {e}"))?
            .e164()
            .to_owned(),
        "prefix" => {
            let digits = value.trim_start_matches('+');
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("{value:?} is not a prefix: 1 to 15 E.164 digits"));
            }
            digits.to_owned()
        }
        "country" => {
            let code = value.to_ascii_uppercase();
            if code.parse::<phonenumber::country::Id>().is_err() {
                return Err(format!("{value:?} is not an ISO 3166 alpha-2 country code"));
            }
            code
        }
        "network" => {
            let net = value
                .parse::<IpNet>()
                .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{value:?} is not a network in CIDR form"))?;
            net.trunc().to_string()
        }
        _ => {
            return Err(format!(
                "unknown type {kind:?}: number, prefix, country or network"
            ));
        }
    };
    if list == "safe" && !matches!(kind.as_str(), "number" | "prefix") {
        return Err("the safe list holds numbers and prefixes only".into());
    }
    Ok(ListEntry { list, kind, value })
}

/// The lists compiled for look-ups that cost the same with 10 entries or
/// 100,000: hash sets, and networks grouped by prefix length.
#[derive(Debug, Default)]
pub struct ListSet {
    block_numbers: HashSet<String>,
    block_prefixes: HashSet<String>,
    block_countries: HashSet<String>,
    block_networks: BTreeMap<u8, HashSet<IpNet>>,
    safe_numbers: HashSet<String>,
    safe_prefixes: HashSet<String>,
    pub len: usize,
}

impl ListSet {
    pub fn new(entries: &[ListEntry]) -> Self {
        let mut set = ListSet {
            len: entries.len(),
            ..ListSet::default()
        };
        for e in entries {
            let v = e.value.clone();
            match (e.list.as_str(), e.kind.as_str()) {
                ("block", "number") => drop(set.block_numbers.insert(v)),
                ("block", "prefix") => drop(set.block_prefixes.insert(v)),
                ("block", "country") => drop(set.block_countries.insert(v)),
                ("block", "network") => {
                    if let Ok(net) = v.parse::<IpNet>() {
                        set.block_networks
                            .entry(net.prefix_len())
                            .or_default()
                            .insert(net);
                    }
                }
                ("safe", "number") => drop(set.safe_numbers.insert(v)),
                ("safe", "prefix") => drop(set.safe_prefixes.insert(v)),
                _ => {}
            }
        }
        set
    }

    /// Whether the number, a prefix of it, or its country is blocked.
    pub fn blocks_number(&self, m: &Mobile) -> bool {
        self.block_numbers.contains(m.e164())
            || has_prefix_in(&self.block_prefixes, m)
            || self.block_countries.contains(m.country())
    }

    /// Whether the client's address is in a blocked network.
    pub fn blocks_address(&self, ip: IpAddr) -> bool {
        self.block_networks.iter().any(|(len, nets)| {
            IpNet::new(ip, *len)
                .map(|n| nets.contains(&n.trunc()))
                .unwrap_or(false)
        })
    }

    /// Whether the number is on the safe list (itself or a prefix).
    pub fn is_safe(&self, m: &Mobile) -> bool {
        self.safe_numbers.contains(m.e164()) || has_prefix_in(&self.safe_prefixes, m)
    }
}

fn has_prefix_in(prefixes: &HashSet<String>, m: &Mobile) -> bool {
    if prefixes.is_empty() {
        return false;
    }
    let digits = m.e164().trim_start_matches('+');
    (1..=digits.len()).any(|n| prefixes.contains(&digits[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MobilePolicy {
        MobilePolicy::new(&["HK"]).expect("policy")
    }

    fn entry(list: &str, kind: &str, value: &str) -> ListEntry {
        parse_entry(list, kind, value, &policy()).expect("valid entry")
    }

    #[test]
    fn entries_are_checked_and_made_canonical() {
        assert_eq!(
            entry("block", "number", "+86 138 1234 5678").value,
            "+8613812345678"
        );
        assert_eq!(entry("BLOCK", "prefix", "+86138").value, "86138");
        assert_eq!(entry("block", "country", "gb").value, "GB");
        assert_eq!(
            entry("block", "network", "203.0.113.77/24").value,
            "203.0.113.0/24"
        );
        assert_eq!(
            entry("block", "network", "2001:db8::1").value,
            "2001:db8::1/128"
        );
        for (list, kind, value) in [
            ("block", "number", "12345"),
            ("block", "prefix", "86-138"),
            ("block", "prefix", ""),
            ("block", "country", "XX"),
            ("block", "network", "10.0.0.0/33"),
            ("block", "colour", "red"),
            ("grey", "number", "13812345678"),
            ("safe", "country", "CN"),
        ] {
            assert!(
                parse_entry(list, kind, value, &policy()).is_err(),
                "{list} {kind} {value}"
            );
        }
    }

    #[test]
    fn look_ups_match_numbers_prefixes_countries_and_networks() {
        let m = |raw: &str| Mobile::parse(raw, &policy()).expect("mobile");
        let set = ListSet::new(&[
            entry("block", "number", "13800000001"),
            entry("block", "prefix", "86139"),
            entry("block", "country", "HK"),
            entry("block", "network", "198.51.100.0/24"),
            entry("safe", "prefix", "86150"),
        ]);
        assert!(set.blocks_number(&m("13800000001")));
        assert!(!set.blocks_number(&m("13800000002")));
        assert!(set.blocks_number(&m("13912345678")));
        assert!(set.blocks_number(&m("+852 5123 4567")));
        assert!(set.blocks_address("198.51.100.9".parse().expect("ip")));
        assert!(!set.blocks_address("198.51.101.9".parse().expect("ip")));
        assert!(set.is_safe(&m("15012345678")));
        assert!(!set.is_safe(&m("13812345678")));
    }

    #[test]
    fn a_hundred_thousand_entries_cost_a_look_up_the_same() {
        let entries: Vec<ListEntry> = (0..100_000u32)
            .map(|i| ListEntry {
                list: "block".into(),
                kind: if i % 2 == 0 { "prefix" } else { "network" }.into(),
                value: if i % 2 == 0 {
                    format!("8617{i:07}")
                } else {
                    format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255)
                },
            })
            .collect();
        let set = ListSet::new(&entries);
        let m = Mobile::parse("13812345678", &policy()).expect("mobile");
        assert!(!set.blocks_number(&m));
        assert!(set.blocks_address("10.0.1.7".parse().expect("ip")));
        assert!(!set.blocks_address("192.0.2.1".parse().expect("ip")));
    }
}
