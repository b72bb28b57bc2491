//! What an operator does (SPEC §10), for the admin API and the CLI alike:
//! find, disable, enable and delete users, end their sessions, change the
//! lists, read the statistics and the audit log. Every change is recorded.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Flow, FlowError};
use crate::audit::Record;
use crate::domain::Mobile;
use crate::store::keys;
use crate::users::{AuditEvent, AuditQuery, ListEntry, User, UserChange};

/// Send and refusal figures of one period ([`Flow::stats`]).
#[derive(Debug, Default, Serialize)]
pub struct Period {
    pub sends: u64,
    pub verifications: u64,
    pub refusals: u64,
    pub refusals_by_reason: BTreeMap<String, u64>,
    pub sends_by_country: BTreeMap<String, u64>,
    pub verifications_by_country: BTreeMap<String, u64>,
    pub sends_by_provider: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub last_hour: Period,
    pub last_day: Period,
}

impl Flow {
    /// A user by id or number.
    pub async fn find_user(
        &self,
        id: Option<i64>,
        mobile: Option<&Mobile>,
    ) -> Result<User, FlowError> {
        let found = match (id, mobile) {
            (Some(id), _) => self.users.by_id(id).await?,
            (None, Some(m)) => self.users.by_mobile(m).await?,
            (None, None) => return Err(super::ParamError::Missing("id or mobile").into()),
        };
        found.ok_or(FlowError::UserMissing)
    }

    /// Disables (every session ends at once) or enables a user.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<User, FlowError> {
        if !self
            .users
            .update(id, UserChange::Disabled(disabled))
            .await?
        {
            return Err(FlowError::UserMissing);
        }
        if disabled {
            self.end_user_sessions(id).await?;
        }
        let user = self.user(id).await?;
        let event = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        self.record(
            Record::new(event)
                .user(id)
                .mobile(&user.mobile)
                .detail("admin"),
        );
        tracing::info!(
            user_id = id,
            disabled,
            "user disabled or enabled by an operator"
        );
        Ok(user)
    }

    /// Deletes a user as [`Flow::delete_account`] does, without their proof.
    pub async fn remove_user(&self, id: i64) -> Result<(), FlowError> {
        let user = self.users.delete(id).await?.ok_or(FlowError::UserMissing)?;
        self.end_user_sessions(id).await?;
        if let Some(avatar) = user.avatar_url {
            self.discard_avatar(avatar).await;
        }
        self.record(
            Record::new("account_deleted")
                .user(id)
                .mobile(&user.mobile)
                .detail("admin"),
        );
        tracing::info!(user_id = id, "account deleted by an operator");
        Ok(())
    }

    /// Ends every session of a user, for an operator.
    pub async fn end_sessions_of(&self, id: i64) -> Result<(), FlowError> {
        self.find_user(Some(id), None).await?;
        self.end_user_sessions(id).await
    }

    /// The entries of one list (`block` or `safe`), oldest first.
    pub async fn list(&self, list: &str) -> Result<Vec<ListEntry>, FlowError> {
        let all = self.users.list_entries().await?;
        Ok(all.into_iter().filter(|e| e.list == list).collect())
    }

    /// Adds (or removes) an entry written as an operator wrote it; `false`
    /// when nothing changed.
    pub async fn change_list(
        &self,
        add: bool,
        list: &str,
        kind: &str,
        value: &str,
    ) -> Result<(ListEntry, bool), FlowError> {
        let entry = crate::defence::parse_entry(list, kind, value, self.defence.policy())
            .map_err(|e| FlowError::Param(super::ParamError::ListEntry(e)))?;
        let changed = if add {
            self.defence.add_entry(&entry).await?
        } else {
            self.defence.remove_entry(&entry).await?
        };
        if changed {
            let verb = if add { "add" } else { "remove" };
            // Numbers are masked in the record, like everywhere else.
            let shown = match entry.kind.as_str() {
                "number" => Mobile::from_e164(&entry.value)
                    .map(|m| m.masked())
                    .unwrap_or_else(|_| crate::domain::mask(&entry.value)),
                _ => entry.value.clone(),
            };
            let detail = format!("{} {verb} {} {shown}", entry.list, entry.kind);
            self.record(Record::new("list_changed").detail(detail));
        }
        Ok((entry, changed))
    }

    /// Sends, verifications and refusals of the last hour and day, from the
    /// audit log (shared by every instance).
    pub async fn stats(&self) -> Result<Stats, FlowError> {
        let now = self.audit.now_ms();
        Ok(Stats {
            last_hour: self.period(now - 3_600_000, "hour").await?,
            last_day: self.period(now - 86_400_000, "day").await?,
        })
    }

    /// Sends and verifications from the audit log; refusals from the
    /// store's exact counts (the log keeps only a sample of them).
    async fn period(&self, since_ms: i64, name: &str) -> Result<Period, FlowError> {
        let mut p = Period::default();
        for c in self.users.audit_counts(since_ms).await? {
            let n = c.count.max(0) as u64;
            let country = c.country.clone().unwrap_or_else(|| "-".into());
            let detail = c.detail.clone().unwrap_or_default();
            match c.event.as_str() {
                "code_sent" => {
                    p.sends += n;
                    *p.sends_by_country.entry(country).or_default() += n;
                    let provider = detail.split('/').nth(1).unwrap_or("-").to_owned();
                    *p.sends_by_provider.entry(provider).or_default() += n;
                }
                "code_verified" => {
                    p.verifications += n;
                    *p.verifications_by_country.entry(country).or_default() += n;
                }
                _ => {}
            }
        }
        for reason in crate::defence::Refusal::REASONS {
            for label in [reason.to_owned(), format!("shadow/{reason}")] {
                let n = self
                    .store
                    .peek_counter(&keys::refusals(&label, name))
                    .await?
                    .count;
                if n > 0 {
                    if !label.starts_with("shadow/") {
                        p.refusals += n;
                    }
                    p.refusals_by_reason.insert(label, n);
                }
            }
        }
        Ok(p)
    }

    /// Audit records, newest first.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, FlowError> {
        Ok(self.users.audit(q).await?)
    }
}
