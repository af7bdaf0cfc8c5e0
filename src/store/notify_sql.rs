//! The SQL of the notification outbox. Claims work like job claims: a lease
//! per row, `FOR UPDATE SKIP LOCKED` on PostgreSQL (`$skip_locked`), so each
//! message is delivered by one replica at a time.

macro_rules! notification_columns {
    () => {
        "id, channel, target, event, node_id, subject, body, created_at, attempts, \
         next_attempt_at, last_error, sent_at, given_up_at"
    };
}
pub(crate) use notification_columns;

/// Binds a notification's columns in `notification_columns!` order.
macro_rules! bind_notification {
    ($query:expr, $n:expr) => {{
        use $crate::store::to_micros;
        let n: &$crate::domain::Notification = $n;
        $query
            .bind(n.id.as_i64())
            .bind(n.channel.as_str())
            .bind(n.target.clone())
            .bind(n.event.clone())
            .bind(n.node_id.map(|i| i.as_i64()))
            .bind(n.subject.clone())
            .bind(n.body.clone())
            .bind(to_micros(n.created_at))
            .bind(i64::from(n.attempts))
            .bind(to_micros(n.next_attempt_at))
            .bind(n.last_error.clone())
            .bind(n.sent_at.map(to_micros))
            .bind(n.given_up_at.map(to_micros))
    }};
}
pub(crate) use bind_notification;

pub(crate) const INSERT_NOTIFICATION: &str = concat!(
    "INSERT INTO notifications (",
    notification_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

macro_rules! impl_notification_store {
    ($store:ty, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::NotificationStore for $store {
            async fn enqueue_notifications(
                &self,
                notifications: &[$crate::domain::Notification],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                for n in notifications {
                    $crate::store::notify_sql::bind_notification!(
                        sqlx::query($crate::store::notify_sql::INSERT_NOTIFICATION),
                        n
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_notifications(
                &self,
                now: $crate::domain::Timestamp,
                owner: &str,
                lease_until: $crate::domain::Timestamp,
                limit: u32,
            ) -> Result<Vec<$crate::domain::Notification>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::NotificationRow>(concat!(
                    "UPDATE notifications SET lease_owner = $2, lease_expires_at = $3 \
                     WHERE id IN (SELECT n.id FROM notifications n \
                     WHERE n.sent_at IS NULL AND n.given_up_at IS NULL AND n.next_attempt_at <= $1 \
                     AND (n.lease_expires_at IS NULL OR n.lease_expires_at < $1) \
                     ORDER BY n.next_attempt_at, n.id LIMIT $4",
                    $skip_locked,
                    ") RETURNING ",
                    $crate::store::notify_sql::notification_columns!()
                ))
                .bind($crate::store::to_micros(now))
                .bind(owner)
                .bind($crate::store::to_micros(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut claimed = rows
                    .into_iter()
                    .map($crate::domain::Notification::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                claimed.sort_by_key(|n| (n.next_attempt_at, n.id));
                Ok(claimed)
            }

            async fn finish_notification(
                &self,
                id: $crate::domain::Id,
                owner: &str,
                outcome: &$crate::domain::Delivery,
                now: $crate::domain::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::domain::Delivery;
                use $crate::store::to_micros;
                let (sent, retry_at, given_up, error) = match outcome {
                    Delivery::Sent => (Some(to_micros(now)), None, None, String::new()),
                    Delivery::Retry { error, at } => (None, Some(to_micros(*at)), None, error.clone()),
                    Delivery::GiveUp { error } => (None, None, Some(to_micros(now)), error.clone()),
                };
                let done = sqlx::query(
                    "UPDATE notifications SET sent_at = $3, given_up_at = $4, \
                     next_attempt_at = COALESCE($5, next_attempt_at), \
                     attempts = attempts + CASE WHEN $3 IS NULL THEN 1 ELSE 0 END, \
                     last_error = $6, lease_owner = '', lease_expires_at = NULL \
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id.as_i64())
                .bind(owner)
                .bind(sent)
                .bind(given_up)
                .bind(retry_at)
                .bind(error)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_notifications(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::domain::Notification>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::NotificationRow>(concat!(
                    "SELECT ",
                    $crate::store::notify_sql::notification_columns!(),
                    " FROM notifications ORDER BY created_at DESC, id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map($crate::domain::Notification::try_from)
                    .collect()
            }

            async fn next_notification_due(
                &self,
            ) -> Result<Option<$crate::domain::Timestamp>, $crate::store::StoreError> {
                let due: Option<i64> = sqlx::query_scalar(
                    // A leased row is due when its lease runs out (its
                    // holder may have died), not before: no hot loop while
                    // another worker delivers it.
                    "SELECT MIN(CASE WHEN lease_expires_at > next_attempt_at \
                     THEN lease_expires_at ELSE next_attempt_at END) FROM notifications \
                     WHERE sent_at IS NULL AND given_up_at IS NULL",
                )
                .fetch_one(&self.pool)
                .await?;
                due.map($crate::store::from_micros).transpose()
            }
        }
    };
}
pub(crate) use impl_notification_store;
