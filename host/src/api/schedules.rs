//! `/schedules`: create, list, inspect, change, pause, resume and delete
//! schedules, preview a trigger's next runs, and read a schedule's history of
//! runs (each with its task). Every change is audited.

use super::error::ApiError;
use super::{Ctx, ListOf, Segment, ctx, json_body, query, reply, respond};
use crate::schedules::{NewSchedule, Run, Schedule, ScheduleError, SchedulePatch, Trigger};
use crate::server::Services;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let message = e.to_string();
        match e {
            ScheduleError::NotFound(_) => ApiError::not_found(message),
            ScheduleError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_schedule",
                message,
            ),
            ScheduleError::Conflict(_) => ApiError::conflict(message),
            ScheduleError::TooMany(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_schedules", message)
            }
            ScheduleError::Task(t) => t.into(),
            ScheduleError::Failed(m) => ApiError::internal("the schedule operation", &m),
        }
    }
}

/// Schedule list options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    /// Administrators: every user's schedules.
    #[serde(default)]
    pub all: Option<bool>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

/// Which runs to read.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Runs whose slot is before this one (`slot_ms` of the last run of the previous page).
    #[serde(default, deserialize_with = "super::query_number")]
    pub before: Option<i64>,
    /// Runs per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
}

/// A schedule's runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    /// Newest slot first.
    pub items: Vec<Run>,
}

/// A trigger to preview.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The trigger, as for create.
    pub trigger: Trigger,
    /// How many runs (1-100, default 10).
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub count: Option<i64>,
}

/// A trigger's next runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// RFC 3339, in the trigger's time zone.
    pub next_runs: Vec<String>,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such schedule"));
    }
    Ok(())
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("schedules");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<ScheduleQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let preview = warp::path!("schedules" / "preview")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(preview(c, b).await) });
    let one = warp::path!("schedules" / Segment);
    let get = one
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get(c, id.0).await) });
    let update = one
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(update(c, id.0, b).await) });
    let delete = one
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(delete(c, id.0).await) });
    let pause = warp::path!("schedules" / Segment / "pause")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(pause(c, id.0).await) });
    let resume = warp::path!("schedules" / Segment / "resume")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(resume(c, id.0).await) });
    let runs = warp::path!("schedules" / Segment / "runs")
        .and(warp::get())
        .and(ctx(s))
        .and(query::<RunQuery>())
        .and_then(|id: Segment, c, q| async move { respond(runs(c, id.0, q).await) });
    list.or(create)
        .unify()
        .or(preview)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(pause)
        .unify()
        .or(resume)
        .unify()
        .or(runs)
        .unify()
}

async fn audited<T>(
    c: &Ctx,
    action: &str,
    target: &str,
    result: Result<T, ScheduleError>,
) -> Result<T, ApiError> {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(action, target, outcome, serde_json::json!({}))
        .await;
    Ok(result?)
}

/// Your schedules (everyone's for an administrator with `all=true`), by id.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", params(ScheduleQuery), security(("bearer" = [])),
    responses((status = 200, body = ListOf<Schedule>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: ScheduleQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let paging = super::Paging {
        limit: q.limit,
        after: q.after,
    };
    let page =
        c.s.schedules
            .list(
                &c.task_caller(),
                q.all == Some(true),
                paging.after()?,
                paging.limit()?,
            )
            .await?;
    Ok(reply(
        StatusCode::OK,
        &ListOf {
            items: page.items,
            next: page.next,
        },
    ))
}

/// Create a schedule: a trigger (once, interval, or cron with an IANA time
/// zone), the task each run starts, and its overlap, catch-up and jitter policies.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = NewSchedule, security(("bearer" = [])),
    responses((status = 201, body = Schedule), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, description = "No such session or agent", body = super::error::ErrorBody),
              (status = 409, description = "You have a schedule of that name", body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody),
              (status = 422, description = "A bad trigger, task or policy", body = super::error::ErrorBody),
              (status = 429, description = "Too many schedules", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewSchedule) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    let result = c.s.schedules.create(&c.task_caller(), body).await;
    let target = result
        .as_ref()
        .map_or_else(|_| "schedule".to_string(), |s| format!("schedule:{}", s.id));
    let schedule = audited(&c, "schedule.create", &target, result).await?;
    Ok(reply(StatusCode::CREATED, &schedule))
}

/// The next runs of a trigger, before saving it.
#[utoipa::path(post, path = "/api/v1/schedules/preview", tag = "schedules", request_body = PreviewRequest, security(("bearer" = [])),
    responses((status = 200, body = Preview), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn preview(c: Ctx, body: PreviewRequest) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let count = match body.count {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::bad_request("count must be between 1 and 100")),
    };
    let next_runs = c.s.schedules.preview(&body.trigger, count)?;
    Ok(reply(StatusCode::OK, &Preview { next_runs }))
}

/// One schedule with its next runs.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path, description = "Schedule id")), security(("bearer" = [])),
    responses((status = 200, body = Schedule), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    Ok(reply(
        StatusCode::OK,
        &c.s.schedules.get(&c.task_caller(), &id).await?,
    ))
}

/// Change a schedule; a new trigger's next run counts from now.
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path, description = "Schedule id")), request_body = SchedulePatch, security(("bearer" = [])),
    responses((status = 200, body = Schedule), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    body: SchedulePatch,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.schedules.update(&c.task_caller(), &id, body).await;
    let schedule = audited(&c, "schedule.update", &format!("schedule:{id}"), result).await?;
    Ok(reply(StatusCode::OK, &schedule))
}

/// Delete a schedule and its history (tasks it started stay).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path, description = "Schedule id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.schedules.delete(&c.task_caller(), &id).await;
    audited(&c, "schedule.delete", &format!("schedule:{id}"), result).await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// Pause a schedule: nothing starts until it is resumed.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/pause", tag = "schedules", params(("id" = String, Path, description = "Schedule id")), security(("bearer" = [])),
    responses((status = 200, body = Schedule), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "A once schedule that ran", body = super::error::ErrorBody)))]
pub async fn pause(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.schedules.set_paused(&c.task_caller(), &id, true).await;
    let schedule = audited(&c, "schedule.pause", &format!("schedule:{id}"), result).await?;
    Ok(reply(StatusCode::OK, &schedule))
}

/// Resume a paused schedule from its next slot after now (runs that fell due
/// while it was paused are not caught up).
#[utoipa::path(post, path = "/api/v1/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path, description = "Schedule id")), security(("bearer" = [])),
    responses((status = 200, body = Schedule), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "A once schedule that ran", body = super::error::ErrorBody)))]
pub async fn resume(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.schedules.set_paused(&c.task_caller(), &id, false).await;
    let schedule = audited(&c, "schedule.resume", &format!("schedule:{id}"), result).await?;
    Ok(reply(StatusCode::OK, &schedule))
}

/// A schedule's history: every slot decided (started with its task, buffered,
/// skipped, missed or failed, with why), newest first.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/runs", tag = "schedules", params(("id" = String, Path, description = "Schedule id"), RunQuery), security(("bearer" = [])),
    responses((status = 200, body = RunList), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn runs(c: Ctx, id: String, q: RunQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=500) => n as usize,
        Some(_) => return Err(ApiError::bad_request("limit must be between 1 and 500")),
    };
    let items =
        c.s.schedules
            .runs(&c.task_caller(), &id, q.before, limit)
            .await?;
    Ok(reply(StatusCode::OK, &RunList { items }))
}
