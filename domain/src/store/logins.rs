//! Failed logins (`login_failures`), counted in the database so that every instance sees
//! every failure: N instances behind a load balancer allow no more guesses than one.

use super::db::stmt;
use super::Store;
use crate::error::Result;

/// A row of `login_failures`: an account and an address, either of which may be empty (a
/// count for the account from anywhere, or for the address on any account).
pub(crate) type FailureKey = (String, String);

impl Store {
    /// For each key, the instant (ms since the epoch) by which its failures are paid off;
    /// `now` or earlier when it has none.
    pub(crate) async fn login_debts(&self, keys: Vec<FailureKey>, now: i64) -> Result<Vec<i64>> {
        self.read(move |tx| {
            Box::pin(async move {
                let mut paid_off = Vec::with_capacity(keys.len());
                for (account, address) in &keys {
                    let at: Option<i64> = stmt(
                        "SELECT paid_off FROM login_failures WHERE account = $1 AND address = $2",
                    )
                    .bind(account)
                    .bind(address)
                    .fetch_optional_scalar(tx)
                    .await?;
                    paid_off.push(at.unwrap_or(now).max(now));
                }
                Ok(paid_off)
            })
        })
        .await
    }

    /// Counts one failure on each key, whose instant moves `every` ms later (from `now` at
    /// the earliest); the new instants, in one job.
    pub(crate) async fn login_failed(
        &self,
        keys: Vec<(FailureKey, i64)>,
        now: i64,
    ) -> Result<Vec<i64>> {
        let greatest = self.backend().greatest();
        self.write(move |tx| {
            Box::pin(async move {
                let mut paid_off = Vec::with_capacity(keys.len());
                for ((account, address), every) in &keys {
                    let sql = format!(
                        "INSERT INTO login_failures (account, address, paid_off) VALUES ($1, $2, $3 + $4) \
                         ON CONFLICT (account, address) DO UPDATE \
                         SET paid_off = {greatest}(login_failures.paid_off, $3) + $4 RETURNING paid_off"
                    );
                    paid_off.push(
                        stmt(sql)
                            .bind(account)
                            .bind(address)
                            .bind(now)
                            .bind(*every)
                            .fetch_scalar(tx)
                            .await?,
                    );
                }
                Ok(paid_off)
            })
        })
        .await
    }

    /// Forgets the failures of one key.
    pub(crate) async fn login_forget(&self, (account, address): FailureKey) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM login_failures WHERE account = $1 AND address = $2")
                    .bind(&account)
                    .bind(&address)
                    .execute(tx)
                    .await
                    .map(drop)
            })
        })
        .await
    }

    /// Forgets every failure counted against an account, from any address (the operator's
    /// `admin unlock`); how many rows went.
    pub(crate) async fn unlock_account(&self, account: &str) -> Result<u64> {
        let account = account.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM login_failures WHERE account = $1")
                    .bind(&account)
                    .execute(tx)
                    .await
            })
        })
        .await
    }

    /// Deletes the rows whose failures are paid off by `now`: they count nothing any more.
    pub async fn prune_login_failures(&self, now: i64) -> Result<u64> {
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM login_failures WHERE paid_off <= $1")
                    .bind(now)
                    .execute(tx)
                    .await
            })
        })
        .await
    }
}
