//! Settings of the ScyllaDB store, each a type that validates when parsed. The keyspace
//! name and the replication settings end up inside CQL text (DDL cannot bind values), so
//! their parsers admit only characters that cannot break out of an identifier or a
//! string literal; everything else the store sends is a bound value.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};

/// Where and how the store connects.
#[derive(Debug, Clone)]
pub struct ScyllaConfig {
    /// Nodes to contact first; the driver discovers the rest of the cluster.
    pub nodes: ContactPoints,
    /// The keyspace holding Parley's tables (created if missing).
    pub keyspace: KeyspaceName,
    /// How a keyspace that does not exist yet is replicated.
    pub replication: Replication,
    /// Consistency of every read and write (lightweight transactions use the serial
    /// level that goes with it).
    pub consistency: ConsistencyLevel,
    /// How long one request may take before it fails.
    pub request_timeout: Duration,
    /// Seqs per history partition, used only when the keyspace is created: an existing
    /// keyspace keeps the size it was created with (see `schema`).
    pub bucket_size: u64,
    /// Rows per page of a paged read.
    pub page_size: u32,
}

impl ScyllaConfig {
    /// Seqs per history partition in a new keyspace: bounded partitions of a few hundred
    /// KiB typically, 16 MiB at worst (1024 bodies of 4096 four-byte characters), so a
    /// busy conversation never grows one unbounded partition; a page of recent history
    /// touches one partition, or two near a boundary.
    pub const DEFAULT_BUCKET_SIZE: u64 = 1024;

    /// Rows per page: a sync batch (1000) or a history page in one round trip.
    pub const DEFAULT_PAGE_SIZE: u32 = 1000;

    /// Settings with the default bucket and page sizes.
    pub fn new(
        nodes: ContactPoints,
        keyspace: KeyspaceName,
        replication: Replication,
        consistency: ConsistencyLevel,
        request_timeout: Duration,
    ) -> Self {
        Self {
            nodes,
            keyspace,
            replication,
            consistency,
            request_timeout,
            bucket_size: Self::DEFAULT_BUCKET_SIZE,
            page_size: Self::DEFAULT_PAGE_SIZE,
        }
    }
}

/// Why a setting was refused; the text is meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(String);

fn invalid(why: impl Into<String>) -> InvalidSetting {
    InvalidSetting(why.into())
}

/// One or more `HOST:PORT` contact points, comma-separated (`[::1]:9042` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPoints(Vec<String>);

impl ContactPoints {
    /// The contact points, as the driver takes them.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromStr for ContactPoints {
    type Err = InvalidSetting;

    fn from_str(raw: &str) -> Result<Self, InvalidSetting> {
        let mut nodes = Vec::new();
        for node in raw.split(',').map(str::trim) {
            let (host, port) = node
                .rsplit_once(':')
                .ok_or_else(|| invalid(format!("{node:?} is not HOST:PORT")))?;
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let host_ok = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
                // A colon in a host is IPv6, which must be bracketed to tell it from the port.
                && (bare != host || !bare.contains(':'));
            if !host_ok {
                return Err(invalid(format!("{node:?} has no valid host")));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => return Err(invalid(format!("{node:?} has no valid port"))),
            }
            nodes.push(node.to_owned());
        }
        Ok(Self(nodes))
    }
}

impl fmt::Display for ContactPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// A keyspace name: a letter, then letters, digits or underscores, 48 at most (what
/// Cassandra and ScyllaDB accept unquoted). Stored lower-case, as the server folds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceName(String);

impl KeyspaceName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyspaceName {
    type Err = InvalidSetting;

    fn from_str(raw: &str) -> Result<Self, InvalidSetting> {
        let ok = raw.len() <= 48
            && raw.starts_with(|c: char| c.is_ascii_alphabetic())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(invalid(
                "a keyspace name is a letter then up to 47 letters, digits or underscores",
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }
}

impl fmt::Display for KeyspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most replicas per data center accepted (clusters use 3, sometimes 5).
const MAX_REPLICATION_FACTOR: u8 = 16;

/// How a new keyspace is replicated: `SimpleStrategy:N` (one data center, N replicas)
/// or `NetworkTopologyStrategy:DC=N[,DC=N...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// N replicas, placement blind to data centers (single-DC clusters and tests).
    Simple(u8),
    /// N replicas in each named data center.
    NetworkTopology(BTreeMap<String, u8>),
}

impl Replication {
    /// The `replication = {...}` map of a `CREATE KEYSPACE`. Safe to splice into CQL:
    /// data-center names were checked to be plain identifiers when parsed.
    pub fn cql_map(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut map = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, n) in dcs {
                    map.push_str(&format!(", '{dc}': {n}"));
                }
                map.push('}');
                map
            }
        }
    }
}

fn factor(raw: &str) -> Result<u8, InvalidSetting> {
    match raw.trim().parse::<u8>() {
        Ok(n) if (1..=MAX_REPLICATION_FACTOR).contains(&n) => Ok(n),
        _ => Err(invalid(format!(
            "a replication factor is 1 to {MAX_REPLICATION_FACTOR}, not {raw:?}"
        ))),
    }
}

impl FromStr for Replication {
    type Err = InvalidSetting;

    fn from_str(raw: &str) -> Result<Self, InvalidSetting> {
        let usage =
            || invalid("replication is SimpleStrategy:N or NetworkTopologyStrategy:DC=N[,DC=N...]");
        let (class, rest) = raw.trim().split_once(':').ok_or_else(usage)?;
        match class {
            "SimpleStrategy" => Ok(Replication::Simple(factor(rest)?)),
            "NetworkTopologyStrategy" => {
                let mut dcs = BTreeMap::new();
                for entry in rest.split(',') {
                    let (dc, n) = entry.trim().split_once('=').ok_or_else(usage)?;
                    let dc = dc.trim();
                    let dc_ok = !dc.is_empty()
                        && dc.len() <= 64
                        && dc
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                    if !dc_ok {
                        return Err(invalid(format!(
                            "{dc:?} is not a data-center name (letters, digits, '_', '-', '.')"
                        )));
                    }
                    if dcs.insert(dc.to_owned(), factor(n)?).is_some() {
                        return Err(invalid(format!("data center {dc:?} is named twice")));
                    }
                }
                Ok(Replication::NetworkTopology(dcs))
            }
            _ => Err(usage()),
        }
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replication::Simple(n) => write!(f, "SimpleStrategy:{n}"),
            Replication::NetworkTopology(dcs) => {
                let dcs: Vec<String> = dcs.iter().map(|(dc, n)| format!("{dc}={n}")).collect();
                write!(f, "NetworkTopologyStrategy:{}", dcs.join(","))
            }
        }
    }
}

/// The consistency level of reads and writes. Only levels valid for both: `ANY` and
/// `EACH_QUORUM` cannot read, and the serial levels are not regular ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyLevel {
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of all replicas.
    Quorum,
    /// Every replica.
    All,
    /// A majority of the replicas in the local data center.
    LocalQuorum,
    /// One replica in the local data center.
    LocalOne,
}

impl ConsistencyLevel {
    /// The driver's level.
    pub fn regular(self) -> Consistency {
        match self {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::Two => Consistency::Two,
            ConsistencyLevel::Three => Consistency::Three,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::All => Consistency::All,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
        }
    }

    /// The serial level of lightweight transactions that goes with it: local when the
    /// regular level is local, so a LOCAL_QUORUM deployment never waits on another DC.
    pub fn serial(self) -> SerialConsistency {
        match self {
            ConsistencyLevel::LocalQuorum | ConsistencyLevel::LocalOne => {
                SerialConsistency::LocalSerial
            }
            _ => SerialConsistency::Serial,
        }
    }
}

impl FromStr for ConsistencyLevel {
    type Err = InvalidSetting;

    fn from_str(raw: &str) -> Result<Self, InvalidSetting> {
        Ok(match raw.trim().to_ascii_uppercase().as_str() {
            "ONE" => ConsistencyLevel::One,
            "TWO" => ConsistencyLevel::Two,
            "THREE" => ConsistencyLevel::Three,
            "QUORUM" => ConsistencyLevel::Quorum,
            "ALL" => ConsistencyLevel::All,
            "LOCAL_QUORUM" => ConsistencyLevel::LocalQuorum,
            "LOCAL_ONE" => ConsistencyLevel::LocalOne,
            "ANY" | "EACH_QUORUM" | "SERIAL" | "LOCAL_SERIAL" => {
                return Err(invalid(format!(
                    "{raw} cannot be used for both reads and writes; use QUORUM or LOCAL_QUORUM"
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "{raw:?} is not a consistency level (ONE, TWO, THREE, QUORUM, ALL, \
                     LOCAL_QUORUM, LOCAL_ONE)"
                )));
            }
        })
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConsistencyLevel::One => "ONE",
            ConsistencyLevel::Two => "TWO",
            ConsistencyLevel::Three => "THREE",
            ConsistencyLevel::Quorum => "QUORUM",
            ConsistencyLevel::All => "ALL",
            ConsistencyLevel::LocalQuorum => "LOCAL_QUORUM",
            ConsistencyLevel::LocalOne => "LOCAL_ONE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_points_are_host_port_lists() {
        let nodes: ContactPoints = "127.0.0.1:9042, db-2.example.com:19042,[::1]:9042"
            .parse()
            .unwrap();
        assert_eq!(
            nodes.iter().collect::<Vec<_>>(),
            ["127.0.0.1:9042", "db-2.example.com:19042", "[::1]:9042"]
        );
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":9042",
            "host:0",
            "host:65536",
            "host:90x",
            "a b:9042",
            "h'ost:9042",
            "127.0.0.1:9042,",
            "::1:9042",
        ] {
            assert!(
                bad.parse::<ContactPoints>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn keyspace_names_are_plain_identifiers_folded_to_lower_case() {
        assert_eq!(
            "Parley_2".parse::<KeyspaceName>().unwrap().as_str(),
            "parley_2"
        );
        for bad in [
            "",
            "2parley",
            "_parley",
            "par-ley",
            "parley\"; DROP KEYSPACE x; --",
            "p".repeat(49).as_str(),
        ] {
            assert!(bad.parse::<KeyspaceName>().is_err(), "{bad:?} was accepted");
        }
        assert!("p".repeat(48).parse::<KeyspaceName>().is_ok());
    }

    #[test]
    fn replication_settings_parse_validate_and_render_as_cql() {
        let simple: Replication = "SimpleStrategy:1".parse().unwrap();
        assert_eq!(
            simple.cql_map(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        let nts: Replication = "NetworkTopologyStrategy:dc1=3, eu-west.2=5"
            .parse()
            .unwrap();
        assert_eq!(
            nts.cql_map(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'eu-west.2': 5}"
        );
        assert_eq!(
            nts.to_string().parse::<Replication>().unwrap(),
            nts,
            "Display round-trips"
        );
        for bad in [
            "",
            "SimpleStrategy",
            "SimpleStrategy:0",
            "SimpleStrategy:17",
            "SimpleStrategy:-1",
            "SimpleStrategy:three",
            "NetworkTopologyStrategy:",
            "NetworkTopologyStrategy:dc1",
            "NetworkTopologyStrategy:dc1=3,dc1=3",
            "NetworkTopologyStrategy:dc'1=3",
            "NetworkTopologyStrategy:dc1=3}; DROP KEYSPACE x",
            "EverywhereStrategy:1",
        ] {
            assert!(bad.parse::<Replication>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn consistency_levels_valid_for_reads_and_writes_parse_in_any_case() {
        let quorum: ConsistencyLevel = "quorum".parse().unwrap();
        assert_eq!(quorum, ConsistencyLevel::Quorum);
        assert_eq!(quorum.serial(), SerialConsistency::Serial);
        let local: ConsistencyLevel = "LOCAL_QUORUM".parse().unwrap();
        assert_eq!(local.regular(), Consistency::LocalQuorum);
        assert_eq!(local.serial(), SerialConsistency::LocalSerial);
        for bad in ["ANY", "EACH_QUORUM", "SERIAL", "local_serial", "", "MOST"] {
            assert!(
                bad.parse::<ConsistencyLevel>().is_err(),
                "{bad:?} was accepted"
            );
        }
        for level in [
            "ONE",
            "TWO",
            "THREE",
            "QUORUM",
            "ALL",
            "LOCAL_QUORUM",
            "LOCAL_ONE",
        ] {
            assert_eq!(
                level.parse::<ConsistencyLevel>().unwrap().to_string(),
                level
            );
        }
    }
}
