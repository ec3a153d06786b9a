//! Record sets from the catalog: the answer records (and the additional
//! records that travel with each) for nodes, services, reverse lookups and
//! the zone apex, plus the NXDOMAIN / NODATA shapes with their SOA. Nothing
//! here knows about wire format or size limits; that is `encode`'s job.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{secs, Built, Entry, Resolver};
use crate::catalog::{Catalog, Health, Instance};
use crate::name;

/// A fully-qualified name from text; `None` when it is not a valid name.
fn fqdn(text: &str) -> Option<Name> {
    let mut name = Name::from_utf8(text).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// Node meta as TXT data: `k=v`, or just `v` for keys prefixed `rfc1035-`;
/// split into 255-byte character strings.
fn meta_txt(key: &str, value: &str) -> TXT {
    let text = match key.strip_prefix("rfc1035-") {
        Some(_) => value.to_string(),
        None => format!("{key}={value}"),
    };
    let mut chunks = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > 255 {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    TXT::new(chunks)
}

pub(super) fn addr_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(name, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name, ttl, RData::AAAA(AAAA(v6))),
    }
}

/// Whether an address record of `ip` answers `qtype`.
pub(super) fn wants_addr(qtype: RecordType, ip: IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

impl<C: Catalog> Resolver<C> {
    pub(super) fn soa(&self, domain: &str) -> Option<Record> {
        let apex = fqdn(domain)?;
        let mname = fqdn(&format!("ns.{domain}"))?;
        let rname = fqdn(&format!("hostmaster.{domain}"))?;
        let soa = SOA::new(mname, rname, (self.clock)(), 3600, 600, 86400, 0);
        Some(Record::from_rdata(apex, 0, RData::SOA(soa)))
    }

    pub(super) fn nxdomain(&self, domain: &str) -> Built {
        Built {
            rcode: ResponseCode::NXDomain,
            authoritative: true,
            answers: Vec::new(),
            authorities: self.soa(domain).into_iter().collect(),
        }
    }

    /// NOERROR with `answers`, or NODATA (SOA in authority) when empty.
    pub(super) fn found(&self, answers: Vec<Entry>, domain: &str) -> Built {
        let authorities = if answers.is_empty() {
            self.soa(domain).into_iter().collect()
        } else {
            Vec::new()
        };
        Built {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities,
        }
    }

    pub(super) fn ns_entry(&self, domain: &str) -> Option<Entry> {
        let apex = fqdn(domain)?;
        let ns_name = fqdn(&format!("ns.{domain}"))?;
        let extras = self
            .config
            .agent_address
            .map(|ip| addr_record(ns_name.clone(), secs(self.config.node_ttl), ip))
            .into_iter()
            .collect();
        Some(Entry {
            record: Record::from_rdata(apex, 0, RData::NS(NS(ns_name))),
            extras,
        })
    }

    fn meta_records(
        &self,
        owner: &Name,
        ttl: u32,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Record> {
        meta.iter()
            .map(|(k, v)| Record::from_rdata(owner.clone(), ttl, RData::TXT(meta_txt(k, v))))
            .collect()
    }

    pub(super) fn node_records(
        &self,
        qname: Name,
        qtype: RecordType,
        address: &str,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Entry> {
        let ttl = secs(self.config.node_ttl);
        let mut answers = Vec::new();
        if let Ok(ip) = address.parse::<IpAddr>() {
            if wants_addr(qtype, ip) {
                let extras =
                    if qtype != RecordType::ANY && self.config.enable_additional_node_meta_txt {
                        self.meta_records(&qname, ttl, meta)
                    } else {
                        Vec::new()
                    };
                answers.push(Entry {
                    record: addr_record(qname.clone(), ttl, ip),
                    extras,
                });
            }
        }
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            answers.extend(
                self.meta_records(&qname, ttl, meta)
                    .into_iter()
                    .map(|record| Entry {
                        record,
                        extras: Vec::new(),
                    }),
            );
        }
        answers
    }

    pub(super) fn service_addr_records(
        &self,
        qname: &Name,
        qtype: RecordType,
        ttl: u32,
        instances: &[Instance],
    ) -> Vec<Entry> {
        let mut seen = HashSet::new();
        let mut answers = Vec::new();
        for inst in instances {
            let address = if inst.service_address.is_empty() {
                &inst.node_address
            } else {
                &inst.service_address
            };
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            if !wants_addr(qtype, ip) || !seen.insert(ip) {
                continue;
            }
            answers.push(Entry {
                record: addr_record(qname.clone(), ttl, ip),
                extras: Vec::new(),
            });
        }
        answers
    }

    pub(super) fn srv_records(
        &self,
        qname: &Name,
        ttl: u32,
        instances: &[Instance],
        domain: &str,
    ) -> Vec<Entry> {
        let local_dc = self.catalog.datacenter();
        let mut answers = Vec::new();
        for inst in instances {
            let dc = if inst.datacenter.is_empty() {
                local_dc.as_str()
            } else {
                inst.datacenter.as_str()
            };
            let weight = match inst.health {
                Health::Warning => inst.weight_warning,
                _ => inst.weight_passing,
            };
            let node_target = fqdn(&format!("{}.node.{dc}.{domain}", inst.node));
            let explicit =
                !inst.service_address.is_empty() && inst.service_address != inst.node_address;
            let (target, extras) = if explicit {
                match inst.service_address.parse::<IpAddr>() {
                    Ok(ip) => {
                        let Some(target) =
                            fqdn(&format!("{}.addr.{dc}.{domain}", name::hex_ip(ip)))
                        else {
                            continue;
                        };
                        (target.clone(), vec![addr_record(target, ttl, ip)])
                    }
                    // A hostname: the SRV points at it, no glue.
                    Err(_) => match fqdn(&inst.service_address) {
                        Some(target) => (target, Vec::new()),
                        None => continue,
                    },
                }
            } else {
                let Some(target) = node_target.clone() else {
                    continue;
                };
                let extras = match inst.node_address.parse::<IpAddr>() {
                    Ok(ip) => vec![addr_record(target.clone(), ttl, ip)],
                    Err(_) => Vec::new(),
                };
                (target, extras)
            };
            let mut extras = extras;
            if self.config.enable_additional_node_meta_txt {
                if let Some(node_name) = &node_target {
                    extras.extend(self.meta_records(node_name, ttl, &inst.node_meta));
                }
            }
            let srv = SRV::new(1, weight, inst.port, target);
            answers.push(Entry {
                record: Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)),
                extras,
            });
        }
        answers
    }

    pub(super) fn reverse(&self, query: &Query, ip: IpAddr) -> Vec<Entry> {
        let domain = &self.domains[0];
        let qname = query.name().clone();
        let local_dc = self.catalog.datacenter();
        let mut targets: Vec<Name> = Vec::new();
        for node in self.catalog.nodes_by_address(ip) {
            let dc = if node.datacenter.is_empty() {
                &local_dc
            } else {
                &node.datacenter
            };
            if let Some(t) = fqdn(&format!("{}.node.{dc}.{domain}", node.name)) {
                targets.push(t);
            }
        }
        if targets.is_empty() {
            for inst in self.catalog.services_by_address(ip) {
                if let Some(t) = fqdn(&format!("{}.service.{domain}", inst.service)) {
                    targets.push(t);
                }
            }
        }
        let mut seen = HashSet::new();
        targets
            .into_iter()
            .filter(|t| seen.insert(t.to_lowercase()))
            .map(|t| Entry {
                record: Record::from_rdata(qname.clone(), 0, RData::PTR(PTR(t))),
                extras: Vec::new(),
            })
            .collect()
    }
}
