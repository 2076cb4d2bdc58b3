//! Storage of alerts (see [`crate::alerts`]): destinations, rule settings, open conditions
//! and the delivery queue.

use super::audit::record_audit;
use super::db::{stmt, Tx};
use super::Store;
use crate::accounts::Admin;
use crate::alerts::{
    Check, ClaimRef, ClaimedRow, Destination, DestinationKind, Message, Outcome, Rule, RuleSetting,
    Watched, MAX_ATTEMPTS, MAX_DESTINATIONS, MAX_QUEUED,
};
use crate::audit::AuditEntry;
use crate::error::{Error, Result};

/// Who the audit log names for delivery attempts.
const DELIVERY_ACTOR: &str = "alert delivery";

/// Queues `message` for the organisation's destinations (or the one `only` names), unless
/// [`MAX_QUEUED`] of its deliveries wait already; how many were queued.
async fn queue(
    tx: &mut Tx,
    organisation_id: &str,
    only: Option<&str>,
    message: &Message,
    at: i64,
) -> Result<u64> {
    let text = serde_json::to_string(message)
        .map_err(|e| Error::internal("an alert could not be written", e))?;
    let queued = stmt(
        "INSERT INTO alert_deliveries (organisation_id, destination_id, message, created_at, next_attempt_at) \
         SELECT $1, d.id, $2, $3, $3 FROM alert_destinations d \
         WHERE d.organisation_id = $1 AND ($4 = '' OR d.id = $4) \
         AND (SELECT COUNT(*) FROM alert_deliveries q WHERE q.organisation_id = $1 AND q.done_at IS NULL) < $5",
    )
    .bind(organisation_id)
    .bind(text)
    .bind(at)
    .bind(only.unwrap_or_default())
    .bind(MAX_QUEUED)
    .execute(tx)
    .await?;
    Ok(queued)
}

/// Notes an alert that was not queued although its organisation has destinations: as many
/// deliveries as it may have wait already.
fn dropped(message: &Message) {
    tracing::warn!(
        alert = %message.alert,
        "an alert was dropped: its organisation has {MAX_QUEUED} alerts waiting to be sent"
    );
}

/// Queues the alert of an audited event, when a rule watches it and is on.
pub(super) async fn queue_audited(
    tx: &mut Tx,
    organisation_id: &str,
    audit: &AuditEntry,
    integration_id: Option<&str>,
    at: i64,
) -> Result<()> {
    let Some(rule) = Rule::of_audit(audit.action) else {
        return Ok(());
    };
    let row = stmt(
        "SELECT o.name, (SELECT kind FROM directory_integrations WHERE id = $2), \
         COALESCE((SELECT enabled FROM alert_rules WHERE organisation_id = $1 AND rule = $3), 1), \
         (SELECT COUNT(*) FROM alert_destinations WHERE organisation_id = $1) \
         FROM organisations o WHERE o.id = $1",
    )
    .bind(organisation_id)
    .bind(integration_id.unwrap_or_default())
    .bind(rule.as_str())
    .fetch_optional(tx)
    .await?;
    let Some(mut row) = row else {
        return Ok(());
    };
    let (name, kind): (String, Option<String>) = (row.take(0), row.take(1));
    let (enabled, destinations): (i64, i64) = (row.take(2), row.take(3));
    if enabled == 0 || destinations == 0 {
        return Ok(());
    }
    let kind = kind.map(|k| k.parse()).transpose()?;
    let message = Message::of_audit(rule, &name, audit, kind, at);
    if queue(tx, organisation_id, None, &message, at).await? == 0 {
        dropped(&message);
    }
    Ok(())
}

impl Store {
    pub(crate) async fn alert_destinations(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<Destination>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(
                    "SELECT id, kind, target, created_at FROM alert_destinations \
                     WHERE organisation_id = $1 ORDER BY created_at, id",
                )
                .bind(&organisation_id)
                .fetch_all(tx)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|mut r| {
                        let id: String = r.take(0);
                        let kind: String = r.take(1);
                        Some(Destination {
                            id,
                            kind: DestinationKind::parse(&kind)?,
                            shown_as: r.take(2),
                            created_at: r.take(3),
                        })
                    })
                    .collect())
            })
        })
        .await
    }

    /// Adds a destination (`Refused` past [`MAX_DESTINATIONS`]) and records `audit`.
    pub(crate) async fn insert_alert_destination(
        &self,
        organisation_id: &str,
        destination: &Destination,
        sealed: Option<Vec<u8>>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let (organisation_id, destination, audit) = (
            organisation_id.to_owned(),
            destination.clone(),
            audit.clone(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                let count: i64 =
                    stmt("SELECT COUNT(*) FROM alert_destinations WHERE organisation_id = $1")
                        .bind(&organisation_id)
                        .fetch_scalar(tx)
                        .await?;
                if count >= MAX_DESTINATIONS as i64 {
                    return Err(Error::Refused(format!(
                        "An organisation may have at most {MAX_DESTINATIONS} alert destinations; \
                         remove one first."
                    )));
                }
                stmt(
                    "INSERT INTO alert_destinations (id, organisation_id, kind, target, sealed_secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&destination.id)
                .bind(&organisation_id)
                .bind(destination.kind.as_str())
                .bind(&destination.shown_as)
                .bind(sealed.as_deref())
                .bind(destination.created_at)
                .execute(tx)
                .await?;
                record_audit(tx, &organisation_id, &audit, None, destination.created_at).await
            })
        })
        .await
    }

    /// Removes one of the admin's organisation's destinations; `NotFound` for any other.
    pub(crate) async fn delete_alert_destination(&self, admin: &Admin, id: &str) -> Result<()> {
        let (organisation_id, id) = (admin.organisation_id.clone(), id.to_owned());
        let audit_of = {
            let admin = admin.clone();
            move |shown: String| AuditEntry::by(&admin, "alert.destination_removed", Some(shown))
        };
        self.write(move |tx| {
            Box::pin(async move {
                let shown: Option<String> = stmt(
                    "DELETE FROM alert_destinations WHERE organisation_id = $1 AND id = $2 RETURNING target",
                )
                .bind(&organisation_id)
                .bind(&id)
                .fetch_optional_scalar(tx)
                .await?;
                let shown = shown.ok_or(Error::NotFound)?;
                record_audit(tx, &organisation_id, &audit_of(shown), None, crate::time::now_ms())
                    .await
            })
        })
        .await
    }

    /// The rules the organisation has set (those it has not are at their defaults).
    pub(crate) async fn alert_rules(&self, organisation_id: &str) -> Result<Vec<RuleSetting>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(
                    "SELECT rule, enabled, threshold FROM alert_rules WHERE organisation_id = $1",
                )
                .bind(&organisation_id)
                .fetch_all(tx)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|mut r| {
                        let rule: String = r.take(0);
                        let rule = Rule::parse(&rule)?;
                        let enabled: i64 = r.take(1);
                        let threshold: i64 = r.take(2);
                        Some(RuleSetting {
                            rule,
                            enabled: enabled != 0,
                            threshold: rule.threshold().map(|_| threshold),
                        })
                    })
                    .collect())
            })
        })
        .await
    }

    pub(crate) async fn set_alert_rule(
        &self,
        organisation_id: &str,
        setting: RuleSetting,
        audit: &AuditEntry,
    ) -> Result<()> {
        let (organisation_id, audit) = (organisation_id.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                stmt(
                    "INSERT INTO alert_rules (organisation_id, rule, enabled, threshold) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (organisation_id, rule) DO UPDATE \
                     SET enabled = excluded.enabled, threshold = excluded.threshold",
                )
                .bind(&organisation_id)
                .bind(setting.rule.as_str())
                .bind(i64::from(setting.enabled))
                .bind(setting.threshold.unwrap_or(0))
                .execute(tx)
                .await?;
                // A rule turned off closes its conditions without a "resolved".
                if !setting.enabled {
                    stmt(
                        "DELETE FROM alert_conditions WHERE organisation_id = $1 \
                         AND condition_key LIKE $2",
                    )
                    .bind(&organisation_id)
                    .bind(format!("{}:%", setting.rule.as_str()))
                    .execute(tx)
                    .await?;
                }
                record_audit(tx, &organisation_id, &audit, None, crate::time::now_ms()).await
            })
        })
        .await
    }

    /// Queues a test alert to one of the admin's organisation's destinations and records
    /// `audit`; `NotFound` for a destination of no such id there, `Refused` when the
    /// organisation has too many alerts waiting.
    pub(crate) async fn queue_test_alert(
        &self,
        admin: &Admin,
        destination_id: &str,
        message: &Message,
        audit: &AuditEntry,
    ) -> Result<()> {
        let (organisation_id, destination_id, message, audit) = (
            admin.organisation_id.clone(),
            destination_id.to_owned(),
            message.clone(),
            audit.clone(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                let exists: Option<String> = stmt(
                    "SELECT target FROM alert_destinations WHERE organisation_id = $1 AND id = $2",
                )
                .bind(&organisation_id)
                .bind(&destination_id)
                .fetch_optional_scalar(tx)
                .await?;
                let shown = exists.ok_or(Error::NotFound)?;
                let now = crate::time::now_ms();
                if queue(tx, &organisation_id, Some(&destination_id), &message, now).await? == 0 {
                    return Err(Error::Refused(format!(
                        "{MAX_QUEUED} alerts are waiting to be sent already; try again when they are."
                    )));
                }
                let audit = AuditEntry {
                    detail: Some(shown),
                    ..audit
                };
                record_audit(tx, &organisation_id, &audit, None, now).await
            })
        })
        .await
    }

    /// The organisations with at least one destination, and their names.
    pub(crate) async fn alerting_organisations(&self) -> Result<Vec<(String, String)>> {
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(
                    "SELECT o.id, o.name FROM organisations o WHERE EXISTS \
                     (SELECT 1 FROM alert_destinations d WHERE d.organisation_id = o.id) ORDER BY o.id",
                )
                .fetch_all(tx)
                .await?;
                Ok(rows.into_iter().map(|mut r| (r.take(0), r.take(1))).collect())
            })
        })
        .await
    }

    pub(crate) async fn watched_integrations(&self, organisation_id: &str) -> Result<Vec<Watched>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(
                    "SELECT id, kind, last_sync_at FROM directory_integrations \
                     WHERE organisation_id = $1 ORDER BY kind",
                )
                .bind(&organisation_id)
                .fetch_all(tx)
                .await?;
                rows.into_iter()
                    .map(|mut r| {
                        Ok(Watched {
                            id: r.take(0),
                            kind: r.take::<String>(1).parse()?,
                            last_sync_at: r.take(2),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    /// The integration's SCIM requests since `since` in the activity log, and how many of
    /// them failed. A 404 is no failure: IdPs look up users that are gone as part of a sync.
    pub(crate) async fn request_outcomes(
        &self,
        integration_id: &str,
        since: i64,
    ) -> Result<(i64, i64)> {
        let integration_id = integration_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let mut row = stmt(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status >= 400 AND status <> 404 THEN 1 ELSE 0 END), 0) \
                     FROM scim_requests WHERE integration_id = $1 AND at >= $2",
                )
                .bind(&integration_id)
                .bind(since)
                .fetch_one(tx)
                .await?;
                Ok((row.take(0), row.take(1)))
            })
        })
        .await
    }

    /// Opens the conditions of `checks` that hold and are not open, and closes those open
    /// that no longer hold, queuing their alerts; each in its own job, so that of several
    /// instances checking at once exactly one opens (or closes) a condition and queues its
    /// alert. A condition a check did not look at (its rule is off) is left alone.
    pub(crate) async fn settle_conditions(
        &self,
        organisation_id: &str,
        checks: Vec<Check>,
        now: i64,
    ) -> Result<()> {
        let open = {
            let organisation_id = organisation_id.to_owned();
            self.read(move |tx| {
                Box::pin(async move {
                    stmt("SELECT condition_key FROM alert_conditions WHERE organisation_id = $1")
                        .bind(&organisation_id)
                        .fetch_all_scalar::<String>(tx)
                        .await
                })
            })
            .await?
        };
        for check in checks {
            let is_open = open.contains(&check.key);
            if check.holds == is_open {
                continue;
            }
            let organisation_id = organisation_id.to_owned();
            self.write(move |tx| {
                Box::pin(async move {
                    let changed = if check.holds {
                        stmt(
                            "INSERT INTO alert_conditions (organisation_id, condition_key, opened_at) \
                             VALUES ($1, $2, $3) ON CONFLICT (organisation_id, condition_key) DO NOTHING",
                        )
                        .bind(&organisation_id)
                        .bind(&check.key)
                        .bind(now)
                        .execute(tx)
                        .await?
                    } else {
                        stmt(
                            "DELETE FROM alert_conditions WHERE organisation_id = $1 AND condition_key = $2",
                        )
                        .bind(&organisation_id)
                        .bind(&check.key)
                        .execute(tx)
                        .await?
                    };
                    if changed == 1 {
                        let message = if check.holds { &check.firing } else { &check.resolved };
                        if queue(tx, &organisation_id, None, message, now).await? == 0 {
                            dropped(message);
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        }
        Ok(())
    }

    /// Holds, until `lease_until`, up to `limit` deliveries due at `now` that no instance
    /// holds, at most `per_organisation` per organisation counting those in `busy`. A lease
    /// is taken by a conditional update: of instances racing for a delivery, one wins.
    pub(crate) async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        busy: Vec<String>,
        limit: usize,
        per_organisation: usize,
    ) -> Result<Vec<ClaimedRow>> {
        // Looked for with a read: every instance looks twice a second, and the queue is
        // mostly empty. Only candidates found take a write, which checks them again.
        let due: Vec<(i64, String)> = self
            .read(move |tx| {
                Box::pin(async move {
                    // The oldest due of each organisation first, so that one with many
                    // waiting does not fill the candidates.
                    let rows = stmt(
                    "SELECT id, organisation_id FROM (SELECT id, organisation_id, next_attempt_at, \
                     ROW_NUMBER() OVER (PARTITION BY organisation_id ORDER BY next_attempt_at, id) AS n \
                     FROM alert_deliveries WHERE done_at IS NULL AND next_attempt_at <= $1 \
                     AND (lease_until IS NULL OR lease_until < $1)) due \
                     WHERE n <= $3 ORDER BY next_attempt_at, id LIMIT $2",
                )
                .bind(now)
                .bind(i64::try_from(limit * 4).unwrap_or(i64::MAX))
                .bind(i64::try_from(per_organisation).unwrap_or(i64::MAX))
                .fetch_all(tx)
                .await?;
                    Ok(rows.into_iter().map(|mut r| (r.take(0), r.take(1))).collect())
                })
            })
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |tx| {
            Box::pin(async move {
                let mut taken: Vec<String> = busy;
                let mut claimed = Vec::new();
                for (id, organisation_id) in due {
                    if claimed.len() >= limit
                        || taken.iter().filter(|o| **o == organisation_id).count()
                            >= per_organisation
                    {
                        continue;
                    }
                    let row = stmt(
                        "UPDATE alert_deliveries SET lease_until = $2, attempts = attempts + 1 \
                         WHERE id = $1 AND done_at IS NULL AND next_attempt_at <= $3 \
                         AND (lease_until IS NULL OR lease_until < $3) \
                         RETURNING attempts, message, destination_id",
                    )
                    .bind(id)
                    .bind(lease_until)
                    .bind(now)
                    .fetch_optional(tx)
                    .await?;
                    let Some(mut row) = row else {
                        continue;
                    };
                    let (attempt, message, destination_id): (i64, String, String) =
                        (row.take(0), row.take(1), row.take(2));
                    let mut d = stmt(
                        "SELECT kind, target, sealed_secret FROM alert_destinations WHERE id = $1",
                    )
                    .bind(&destination_id)
                    .fetch_one(tx)
                    .await?;
                    let (kind, target): (String, String) = (d.take(0), d.take(1));
                    taken.push(organisation_id.clone());
                    claimed.push(ClaimedRow {
                        id,
                        organisation_id,
                        destination_id,
                        attempt,
                        lease_until,
                        message,
                        kind,
                        shown_as: target.clone(),
                        target,
                        sealed: d.take(2),
                    });
                }
                Ok(claimed)
            })
        })
        .await
    }

    /// Records how an attempt ended (see [`crate::alerts::finish`]), with its audit entry,
    /// if `claim`'s lease is still the delivery's. `retry`: the wait before the next
    /// attempt (`None`: give up now whatever the outcome).
    pub(crate) async fn finish_delivery(
        &self,
        claim: &ClaimRef,
        outcome: &Outcome,
        now: i64,
        retry: Option<i64>,
    ) -> Result<()> {
        let (id, lease, attempt) = (claim.id, claim.lease_until, claim.attempt);
        let organisation_id = claim.organisation_id.clone();
        let outcome = outcome.clone();
        let shown = claim.shown_as.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let (action, detail, done, sent, next, error) = match (&outcome, retry) {
                    (Outcome::Sent, _) => (
                        "alert.sent",
                        format!("to {shown} (attempt {attempt})"),
                        true,
                        1_i64,
                        now,
                        None,
                    ),
                    (Outcome::Failed(why), Some(wait)) if attempt < MAX_ATTEMPTS => (
                        "alert.failed",
                        format!(
                            "to {shown} (attempt {attempt}, retried in {} s): {why}",
                            wait / 1000
                        ),
                        false,
                        0,
                        now + wait,
                        Some(why.clone()),
                    ),
                    (Outcome::Failed(why) | Outcome::Unsendable(why), _) => (
                        "alert.given_up",
                        format!("to {shown} (attempt {attempt}): {why}"),
                        true,
                        0,
                        now,
                        Some(why.clone()),
                    ),
                };
                let changed = stmt(
                    "UPDATE alert_deliveries SET lease_until = NULL, done_at = $3, sent = $4, \
                     next_attempt_at = $5, last_error = $6 WHERE id = $1 AND lease_until = $2",
                )
                .bind(id)
                .bind(lease)
                .bind(done.then_some(now))
                .bind(sent)
                .bind(next)
                .bind(error)
                .execute(tx)
                .await?;
                if changed == 1 {
                    let audit = AuditEntry {
                        admin_id: None,
                        actor: DELIVERY_ACTOR.into(),
                        action,
                        detail: Some(detail),
                    };
                    record_audit(tx, &organisation_id, &audit, None, now).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Deletes deliveries done before `before`; how many.
    pub async fn prune_alert_deliveries(&self, before: i64) -> Result<u64> {
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM alert_deliveries WHERE done_at < $1")
                    .bind(before)
                    .execute(tx)
                    .await
            })
        })
        .await
    }
}
