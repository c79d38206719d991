//! The agent's side door into the log store: `awslogs` containers' output, shipped in
//! batches (`POST /agent/v1/logs`), appended through the same checks as PutLogEvents, with
//! the agent's cursor stored in the same transaction so a restarted agent resumes exactly.

use berth_logs::LogsError;
use berth_model::logs::{LogGroup, LogStream, ShipAnswer, ShipBatch};
use berth_model::ApiError;

use super::events::append_screened;
use super::logs_err;
use crate::Ops;

/// Appends one batch. A missing group is created when the container asked for it
/// (`awslogs-create-group`), otherwise ResourceNotFoundException (the task fails to start,
/// as on ECS); a missing stream is created.
pub async fn ship(ops: &Ops, batch: ShipBatch) -> Result<ShipAnswer, ApiError> {
    let now = (ops.now() * 1000.0) as i64;
    super::with_store(&ops.logs, move |s| {
        if s.group(&batch.log_group_name).map_err(logs_err)?.is_none() {
            if !batch.create_group {
                return Err(logs_err(LogsError::GroupNotFound));
            }
            let g = LogGroup {
                log_group_name: batch.log_group_name.clone(),
                creation_time: now,
                retention_in_days: None,
                tags: Default::default(),
            };
            match s.create_group(&g) {
                Ok(()) | Err(LogsError::AlreadyExists) => {}
                Err(e) => return Err(logs_err(e)),
            }
        }
        let find = |s: &dyn berth_logs::LogStore| -> Result<Option<LogStream>, ApiError> {
            Ok(s.streams(&batch.log_group_name, &batch.log_stream_name)
                .map_err(logs_err)?
                .into_iter()
                .find(|st| st.log_stream_name == batch.log_stream_name))
        };
        let stream = match find(s)? {
            Some(st) => st,
            None => {
                let st = LogStream {
                    log_stream_name: batch.log_stream_name.clone(),
                    creation_time: now,
                    ..Default::default()
                };
                match s.create_stream(&batch.log_group_name, &st) {
                    Ok(()) | Err(LogsError::AlreadyExists) => {}
                    Err(e) => return Err(logs_err(e)),
                }
                st
            }
        };
        if batch.events.is_empty() {
            return Ok(ShipAnswer {
                cursor: stream.agent_cursor,
                rejected: 0,
            });
        }
        let sent = batch.events.len();
        let info = append_screened(
            s,
            &batch.log_group_name,
            &batch.log_stream_name,
            batch.events,
            now,
            batch.cursor,
        )?;
        let kept_from = info
            .too_old_log_event_end_index
            .max(info.expired_log_event_end_index)
            .unwrap_or(0);
        let kept_to = info.too_new_log_event_start_index.unwrap_or(sent);
        Ok(ShipAnswer {
            cursor: batch.cursor,
            rejected: (sent - kept_to.saturating_sub(kept_from)) as u64,
        })
    })
    .await
}
