//! One resource kind's compiled rules: exact names and prefixes, each merged across policies.
//!
//! Lookup follows Consul: an exact rule for the name wins; otherwise the longest prefix rule
//! that is a prefix of the name. Prefix lookups probe only the prefix lengths that occur, so a
//! check costs a few map look-ups whatever the number of rules.

use crate::access::AccessLevel;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    exact: BTreeMap<String, AccessLevel>,
    prefix: BTreeMap<String, AccessLevel>,
    prefix_lens: BTreeSet<usize>,
}

impl Table {
    /// Adds a rule, merging with an existing rule for the same name and form (deny wins).
    pub(crate) fn insert(&mut self, name: &str, prefix: bool, access: AccessLevel) {
        let map = if prefix {
            self.prefix_lens.insert(name.len());
            &mut self.prefix
        } else {
            &mut self.exact
        };
        map.entry(name.to_string())
            .and_modify(|old| *old = old.merge(access))
            .or_insert(access);
    }

    /// The level that governs `name`: exact rule, else longest matching prefix rule.
    pub(crate) fn lookup(&self, name: &str) -> Option<AccessLevel> {
        self.exact
            .get(name)
            .copied()
            .or_else(|| self.longest_prefix(name))
    }

    /// The longest prefix rule whose prefix is a prefix of `name` (or equals it).
    pub(crate) fn longest_prefix(&self, name: &str) -> Option<AccessLevel> {
        self.prefix_lens
            .range(..=name.len())
            .rev()
            .filter(|&&len| name.is_char_boundary(len))
            .find_map(|&len| self.prefix.get(&name[..len]).copied())
    }

    /// Whether any rule (exact or prefix) whose name starts with `prefix` fails `pred`.
    pub(crate) fn any_under(&self, prefix: &str, pred: impl Fn(AccessLevel) -> bool) -> bool {
        let under = |map: &BTreeMap<String, AccessLevel>| {
            map.range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with(prefix))
            .any(|(_, &access)| pred(access))
        };
        under(&self.exact) || under(&self.prefix)
    }

    /// Every rule grants `want`: `Some(false)` if any rule (exact or prefix) does not,
    /// `Some(true)` if all do and a `""` prefix rule covers everything, `None` (no decision:
    /// the default policy's) otherwise.
    pub(crate) fn all_granted(&self, want: AccessLevel) -> Option<bool> {
        let mut all = self.exact.values().chain(self.prefix.values());
        if all.any(|access| !access.grants(want)) {
            Some(false)
        } else if self.prefix.contains_key("") {
            Some(true)
        } else {
            None
        }
    }

    /// Some rule grants `want`: `Some(true)` if any rule does, else `Some(false)` when a `""`
    /// prefix rule (which does not) covers everything, else `None`.
    pub(crate) fn any_granted(&self, want: AccessLevel) -> Option<bool> {
        let mut all = self.exact.values().chain(self.prefix.values());
        if all.any(|access| access.grants(want)) {
            Some(true)
        } else if self.prefix.contains_key("") {
            Some(false)
        } else {
            None
        }
    }
}
