//! Which of an instance's route and rule lists a state installs (keepalived's
//! `virtual_routes` / `virtual_rules` and their backup counterparts).

use crate::config::model;

/// Which of an instance's route and rule lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RouteSet {
    /// `route` and `rule`: installed while master (with the VIPs).
    Master,
    /// `backup_route` and `backup_rule`: installed while backup.
    Backup,
}

impl RouteSet {
    /// This set's routes in an instance's config.
    pub(super) fn of(self, cfg: &model::Instance) -> &Vec<model::Route> {
        match self {
            RouteSet::Master => &cfg.routes,
            RouteSet::Backup => &cfg.backup_routes,
        }
    }

    /// This set's policy rules.
    pub(super) fn rules(self, cfg: &model::Instance) -> &Vec<model::Rule> {
        match self {
            RouteSet::Master => &cfg.rules,
            RouteSet::Backup => &cfg.backup_rules,
        }
    }
}
