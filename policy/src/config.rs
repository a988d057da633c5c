//! `Config`: the whole checked configuration, built from the bytes of every file.
//!
//! [`Config::from_sources`] parses every file (even after another failed), resolves names
//! (policy → action → TLS profile), checks rules that span files, and returns either an
//! immutable `Config` or every error found. Reading the directory is the caller's job; a
//! reload builds a new `Config` and swaps it in, so a `Config` never changes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crate::action::{ProfileLookup, ProxyAction};
use crate::check::{salvage_name, Checker};
use crate::defaults as d;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::global::Global;
use crate::policy::{ActionLookup, Policy, PortKind};
use crate::raw::{RawAction, RawGlobal, RawPolicy, RawTlsProfile};
use crate::salvage;
use crate::select::SelectIndex;
use crate::tls_profile::TlsProfile;

/// The raw bytes of every configuration file, as the caller read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// `popgate.json`; `None` when the file does not exist (all defaults).
    pub global: Option<Source>,
    /// `policies/*.json`.
    pub policies: Vec<Source>,
    /// `actions/*.json`.
    pub actions: Vec<Source>,
    /// `tls-profiles/*.json`.
    pub tls_profiles: Vec<Source>,
}

/// One file: its name relative to the config directory and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// E.g. `policies/out.json`; used verbatim in error messages.
    pub file: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// The checked, immutable configuration. Cloning is cheap (one `Arc`).
#[derive(Debug, Clone)]
pub struct Config(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    global: Global,
    /// Sorted by (order, name).
    policies: Vec<Policy>,
    /// Sorted by name.
    actions: Vec<Arc<ProxyAction>>,
    /// Sorted by name; includes the built-in profile unless a file replaced it.
    tls_profiles: Vec<Arc<TlsProfile>>,
    index: SelectIndex,
}

impl Source {
    /// A file's name and content.
    pub fn new(file: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            file: file.into(),
            bytes: bytes.into(),
        }
    }
}

impl Default for Config {
    /// The configuration of an empty directory: default global settings, no policy.
    fn default() -> Self {
        Self::assemble(
            Global::default(),
            Vec::new(),
            BTreeMap::new(),
            builtin_profiles(),
        )
    }
}

impl Config {
    /// Parses and checks a whole configuration.
    ///
    /// # Errors
    /// Every problem found, in file order (global, profiles, actions, policies, then rules
    /// spanning policies); never an empty vector.
    pub fn from_sources(sources: &Sources) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let global = match &sources.global {
            None => Global::default(),
            Some(src) => match salvage::parse_all::<RawGlobal>(&src.file, &src.bytes) {
                Ok(raw) => Global::check(raw, &mut Checker::new(&src.file, &mut errors)),
                Err(salvaged) => {
                    report_salvaged(&src.file, salvaged, &mut errors, |raw, ck| {
                        Global::check(raw, ck);
                    });
                    Global::default()
                }
            },
        };

        let (profiles, broken_profiles) = load(
            &sources.tls_profiles,
            &mut errors,
            |raw: RawTlsProfile, ck| TlsProfile::check(raw, ck),
            TlsProfile::name,
        );
        let mut profiles = into_arcs(profiles);
        profiles
            .entry(d::TLS_PROFILE.to_owned())
            .or_insert_with(|| Arc::new(TlsProfile::builtin()));
        let profile_lookup = |name: &str| match profiles.get(name) {
            Some(p) => ProfileLookup::Found(Arc::clone(p)),
            None if broken_profiles.contains(name) => ProfileLookup::Broken,
            None => ProfileLookup::Missing,
        };

        let idle = global.limits().idle_timeout();
        let (actions, broken_actions) = load(
            &sources.actions,
            &mut errors,
            |raw: RawAction, ck| ProxyAction::check(raw, ck, idle, &profile_lookup),
            ProxyAction::name,
        );
        let actions = into_arcs(actions);
        let action_lookup = |name: &str| match actions.get(name) {
            Some(a) => ActionLookup::Found(Arc::clone(a)),
            None if broken_actions.contains(name) => ActionLookup::Broken,
            None => ActionLookup::Missing,
        };

        let interception = global.interception();
        let (policies, _) = load(
            &sources.policies,
            &mut errors,
            |raw: RawPolicy, ck| Policy::check(raw, ck, interception, &action_lookup),
            Policy::name,
        );
        let policies: Vec<Policy> = policies.into_values().collect();
        check_across_policies(&policies, &mut errors);

        if errors.is_empty() {
            Ok(Self::assemble(global, policies, actions, profiles))
        } else {
            Err(errors)
        }
    }

    /// Global settings.
    pub fn global(&self) -> &Global {
        &self.0.global
    }

    /// Every policy, enabled or not, by `order` (then name).
    pub fn policies(&self) -> &[Policy] {
        &self.0.policies
    }

    /// Enabled policies, by `order`.
    pub fn enabled_policies(&self) -> impl Iterator<Item = &Policy> {
        self.0.policies.iter().filter(|p| p.enabled())
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.0.policies.iter().find(|p| p.name() == name)
    }

    /// Every proxy action, by name.
    pub fn actions(&self) -> &[Arc<ProxyAction>] {
        &self.0.actions
    }

    /// The proxy action named `name`.
    pub fn action(&self, name: &str) -> Option<&Arc<ProxyAction>> {
        self.0.actions.iter().find(|a| a.name() == name)
    }

    /// Every policy (enabled or not) using the action named `name`, by `order`.
    pub fn policies_using_action(&self, name: &str) -> Vec<&Policy> {
        self.0
            .policies
            .iter()
            .filter(|p| p.action().name() == name)
            .collect()
    }

    /// Every TLS profile by name, including the built-in `TLS-Client.Standard` unless a
    /// file defines that name.
    pub fn tls_profiles(&self) -> &[Arc<TlsProfile>] {
        &self.0.tls_profiles
    }

    /// The TLS profile named `name`.
    pub fn tls_profile(&self, name: &str) -> Option<&Arc<TlsProfile>> {
        self.0.tls_profiles.iter().find(|p| p.name() == name)
    }

    /// The listeners the enabled policies need (their union; see [`Policy::listeners`]).
    pub fn listen_ports(&self) -> BTreeSet<(PortKind, u16)> {
        self.enabled_policies()
            .flat_map(Policy::listeners)
            .collect()
    }

    pub(crate) fn index(&self) -> &SelectIndex {
        &self.0.index
    }

    fn assemble(
        global: Global,
        mut policies: Vec<Policy>,
        actions: BTreeMap<String, Arc<ProxyAction>>,
        profiles: BTreeMap<String, Arc<TlsProfile>>,
    ) -> Self {
        policies.sort_by(|a, b| (a.order(), a.name()).cmp(&(b.order(), b.name())));
        let index = SelectIndex::build(&policies);
        Self(Arc::new(Inner {
            global,
            policies,
            actions: actions.into_values().collect(),
            tls_profiles: profiles.into_values().collect(),
            index,
        }))
    }
}

/// Parses and checks every file of one kind, in file-name order. Returns the checked
/// objects by name and the names salvaged from files that failed to parse.
/// Records every schema error of a file that did not parse, then the errors the semantic
/// `check` finds in what remains, except those the removed fields could have caused.
/// The file stays broken either way: nothing of it is used.
fn report_salvaged<R>(
    file: &str,
    salvaged: salvage::Salvaged<R>,
    errors: &mut Vec<ConfigError>,
    check: impl FnOnce(R, &mut Checker<'_>),
) {
    let salvage::Salvaged {
        errors: schema_errors,
        pruned,
        removed,
    } = salvaged;
    errors.extend(schema_errors);
    if let Some(raw) = pruned {
        let mut semantic = Vec::new();
        check(raw, &mut Checker::new(file, &mut semantic));
        errors.extend(
            semantic
                .into_iter()
                .filter(|error| salvage::keeps(&removed, error)),
        );
    }
}

fn load<R, T>(
    sources: &[Source],
    errors: &mut Vec<ConfigError>,
    check: impl Fn(R, &mut Checker<'_>) -> T,
    name_of: impl Fn(&T) -> &str,
) -> (BTreeMap<String, T>, HashSet<String>)
where
    R: serde::de::DeserializeOwned,
{
    let mut sorted: Vec<&Source> = sources.iter().collect();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    let mut defined: BTreeMap<String, (T, &str)> = BTreeMap::new();
    let mut broken = HashSet::new();
    for src in sorted {
        let raw = match salvage::parse_all::<R>(&src.file, &src.bytes) {
            Ok(raw) => raw,
            Err(salvaged) => {
                report_salvaged(&src.file, salvaged, errors, |raw, ck| {
                    check(raw, ck);
                });
                broken.extend(salvage_name(&src.bytes));
                continue;
            }
        };
        let mut ck = Checker::new(&src.file, errors);
        let item = check(raw, &mut ck);
        let name = name_of(&item).to_owned();
        match defined.get(&name) {
            Some((_, other_file)) => {
                let kind = ConfigErrorKind::DuplicateName {
                    name,
                    other_file: (*other_file).to_owned(),
                };
                ck.error(".name", kind);
            }
            None => {
                defined.insert(name, (item, &src.file));
            }
        }
    }
    let defined = defined
        .into_iter()
        .map(|(name, (item, _))| (name, item))
        .collect();
    (defined, broken)
}

/// Rules between enabled policies: unique `order`, and one kind per port number.
fn check_across_policies(policies: &[Policy], errors: &mut Vec<ConfigError>) {
    let mut enabled: Vec<&Policy> = policies.iter().filter(|p| p.enabled()).collect();
    enabled.sort_by(|a, b| a.file().cmp(b.file()));
    let mut orders: BTreeMap<u32, &Policy> = BTreeMap::new();
    let mut ports: BTreeMap<u16, (PortKind, &Policy)> = BTreeMap::new();
    for policy in enabled {
        let mut ck = Checker::new(policy.file(), errors);
        match orders.get(&policy.order()) {
            Some(other) => ck.error(
                ".order",
                ConfigErrorKind::DuplicateOrder {
                    order: policy.order(),
                    other_policy: other.name().to_owned(),
                    other_file: other.file().to_owned(),
                },
            ),
            None => {
                orders.insert(policy.order(), policy);
            }
        }
        for (kind, port) in policy.listeners() {
            match ports.get(&port) {
                // Inside one policy, equal ports are reported as SamePorts.
                Some((other_kind, other))
                    if *other_kind != kind && other.file() != policy.file() =>
                {
                    ck.error(
                        format!(".ports.{kind}"),
                        ConfigErrorKind::PortConflict {
                            port,
                            other_kind: *other_kind,
                            other_policy: other.name().to_owned(),
                            other_file: other.file().to_owned(),
                        },
                    )
                }
                Some(_) => {}
                None => {
                    ports.insert(port, (kind, policy));
                }
            }
        }
    }
}

fn into_arcs<T>(map: BTreeMap<String, T>) -> BTreeMap<String, Arc<T>> {
    map.into_iter()
        .map(|(name, item)| (name, Arc::new(item)))
        .collect()
}

fn builtin_profiles() -> BTreeMap<String, Arc<TlsProfile>> {
    let builtin = TlsProfile::builtin();
    BTreeMap::from([(builtin.name().to_owned(), Arc::new(builtin))])
}
