//! JSON series for the traffic graphs: `/graph-data/port/{port_id}?period=day|week|month`
//! reads `<hostname>/port-id<port_id>.rrd` (INOCTETS/OUTOCTETS, AVERAGE) and returns bits/s:
//! `{"start","step","timestamps":[...],"series":{"in_bps":[...],"out_bps":[...]}}`.
//! A port whose RRD file does not exist yet gets the same shape with empty arrays and
//! `"no_data": true`, so the page shows "no data yet" instead of an error.
//!
//! Authenticated by the session cookie (the page's script) or an API token (scripts).

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use lookout_timeseries::{Cf, Series, TimeSeriesError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::Access;
use crate::api::ApiPath;
use crate::error::{ApiError, WebError};
use crate::Shared;

/// Time span a graph covers: the presets from an hour to two years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Period {
    Hour,
    SixHours,
    Day,
    Week,
    Month,
    Year,
    TwoYears,
}

impl Period {
    /// Every preset, shortest first (the graph page's links).
    pub(crate) const ALL: [Period; 7] = [
        Period::Hour,
        Period::SixHours,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Year,
        Period::TwoYears,
    ];

    pub(crate) fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::SixHours => "6h",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
            Period::TwoYears => "2y",
        }
    }

    pub(crate) fn span_secs(self) -> i64 {
        match self {
            Period::Hour => 3600,
            Period::SixHours => 6 * 3600,
            Period::Day => 86_400,
            Period::Week => 7 * 86_400,
            Period::Month => 31 * 86_400,
            Period::Year => 365 * 86_400,
            Period::TwoYears => 2 * 365 * 86_400,
        }
    }

    /// The span fetched for the JSON graph. Below a 30 s interval the full-resolution
    /// archive holds less than a day (`RAW_ROWS_MAX` rows), and rrdtool would answer a day
    /// from the 5-step archive, whose newest row fills only after 5 polls: the day graph
    /// then shows the raw archive's span (8 h at 10 s) instead of a blank.
    pub(crate) fn fetch_span_secs(self, poll_interval: u64) -> i64 {
        let raw = lookout_timeseries::defs::RAW_ROWS_MAX.saturating_mul(poll_interval.max(1));
        match self {
            Period::Hour | Period::SixHours | Period::Day => {
                self.span_secs().min(i64::try_from(raw).unwrap_or(i64::MAX))
            }
            _ => self.span_secs(),
        }
    }

    /// Resolution asked of the RRD: the poll interval for a day, then the 6- and 24-step
    /// archives LibreNMS's RRA layout keeps (about 300 points per graph either way).
    fn resolution_secs(self, poll_interval: u64) -> u64 {
        let base = poll_interval.max(1);
        match self {
            Period::Hour | Period::SixHours | Period::Day => base,
            Period::Week => base * 6,
            Period::Month => base * 24,
            // LibreNMS's 288-step archive (a day at 300 s) covers the years.
            Period::Year | Period::TwoYears => base * 288,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct GraphQuery {
    period: Option<String>,
    /// Arbitrary range (unix seconds, `-1d`, `now-6h`, UTC dates); overrides `period`.
    from: Option<String>,
    to: Option<String>,
}

/// The resolution for an arbitrary span: the same archives as the presets.
fn resolution_for_span(span: i64, poll_interval: u64) -> u64 {
    let base = poll_interval.max(1);
    if span <= 2 * 86_400 {
        base
    } else if span <= 8 * 86_400 {
        base * 6
    } else {
        base * 24
    }
}

/// A request allowed to read graph data: a session or an API token, with what it may see.
pub(crate) struct GraphReader {
    access: Access,
}

impl FromRequestParts<Shared> for GraphReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Shared) -> Result<Self, ApiError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(s) = ctx.sealer.session(&parts.headers, now) {
            if let Some((_, access)) = crate::sessions::resume(ctx, &s, now).await? {
                return Ok(GraphReader { access });
            }
        }
        if let Some(user) = crate::api::token_user(parts, ctx).await? {
            let access = Access::of(&ctx.state.store, &user).await?;
            return Ok(GraphReader { access });
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "log in or send an API token",
        ))
    }
}

/// `GET /graph-data/port/{port_id}?period=day|week|month`
pub(crate) async fn port(
    reader: GraphReader,
    State(ctx): State<Shared>,
    ApiPath(port_id): ApiPath<String>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let port_id: i64 = port_id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "port id must be a number"))?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let period = match &q.period {
        None => Period::Day,
        Some(p) => Period::parse(p).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "period must be hour, 6h, day, week, month, year or 2y",
            )
        })?,
    };
    let now = chrono::Utc::now().timestamp();
    let poll = ctx.state.poll_interval_secs;
    // from/to win over the period; a bad time is the client's error (400), not an outage.
    let (start, end, res) = if q.from.is_some() || q.to.is_some() {
        let (from, to) =
            crate::timespec::range(q.from.as_deref(), q.to.as_deref(), period.span_secs(), now)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
        (from, to, resolution_for_span(to - from, poll))
    } else {
        (
            now - period.fetch_span_secs(poll),
            now,
            period.resolution_secs(poll),
        )
    };
    let store = &ctx.state.store;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("port {port_id} does not exist"),
        )
    };
    let port = store.port(port_id).await?.ok_or_else(not_found)?;
    if !reader.access.can_see(port.device_id) {
        return Err(not_found());
    }
    let device = store.device(port.device_id).await?.ok_or_else(not_found)?;

    let path = format!("{}/port-id{}.rrd", device.hostname, port_id);
    let ts = &ctx.state.timeseries;
    match ts.exists(&path).await {
        Ok(true) => {}
        Ok(false) => return Ok(Json(empty(start, res, period))),
        // A host name the time series refuses as a path (e.g. an IPv6 literal with ':')
        // never gets a file: that is "no data", not an outage.
        Err(TimeSeriesError::BadPath(p)) => {
            tracing::debug!(path = %p, "no graph: RRD path not allowed");
            return Ok(Json(empty(start, res, period)));
        }
        Err(e) => return Err(WebError::from(e).into()),
    }
    let series = ts
        .fetch(&path, Cf::Average, start, end, res)
        .await
        .map_err(WebError::from)?;
    Ok(Json(to_json(&series, period)))
}

fn empty(start: i64, step: u64, period: Period) -> Value {
    json!({
        "start": start,
        "step": step,
        "period": period.as_str(),
        "no_data": true,
        "timestamps": [],
        "series": {"in_bps": [], "out_bps": []},
    })
}

/// Octets/s rows to bits/s columns; unknown (NaN) stays `null`, so uPlot draws a gap.
fn to_json(s: &Series, period: Period) -> Value {
    let col = |name: &str| s.ds_names.iter().position(|n| n == name);
    let (i_in, i_out) = (col("INOCTETS"), col("OUTOCTETS"));
    let bits = |row: &Vec<Option<f64>>, i: Option<usize>| -> Option<f64> {
        i.and_then(|i| row.get(i).copied().flatten())
            .filter(|v| v.is_finite())
            .map(|v| v * 8.0)
    };
    let step = i64::try_from(s.step).unwrap_or(i64::MAX);
    let mut timestamps = Vec::with_capacity(s.rows.len());
    let mut in_bps = Vec::with_capacity(s.rows.len());
    let mut out_bps = Vec::with_capacity(s.rows.len());
    let mut t = s.start;
    for row in &s.rows {
        timestamps.push(t);
        in_bps.push(bits(row, i_in));
        out_bps.push(bits(row, i_out));
        t = t.saturating_add(step);
    }
    let no_data = in_bps.iter().chain(&out_bps).all(Option::is_none);
    json!({
        "start": s.start,
        "step": s.step,
        "period": period.as_str(),
        "no_data": no_data,
        "timestamps": timestamps,
        "series": {"in_bps": in_bps, "out_bps": out_bps},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_octets_to_bits_and_keeps_gaps() {
        let s = Series {
            start: 1000,
            step: 300,
            ds_names: vec!["INOCTETS".into(), "OUTOCTETS".into(), "INERRORS".into()],
            rows: vec![
                vec![Some(100.0), Some(50.0), Some(0.0)],
                vec![None, Some(f64::NAN), None],
            ],
        };
        let v = to_json(&s, Period::Week);
        assert_eq!(v["timestamps"], json!([1000, 1300]));
        assert_eq!(v["series"]["in_bps"], json!([800.0, null]));
        assert_eq!(v["series"]["out_bps"], json!([400.0, null]));
        assert_eq!(v["no_data"], json!(false));
        assert_eq!(v["period"], json!("week"));
    }

    #[test]
    fn all_unknown_is_no_data() {
        let s = Series {
            start: 0,
            step: 60,
            ds_names: vec!["INOCTETS".into(), "OUTOCTETS".into()],
            rows: vec![vec![None, None]],
        };
        assert_eq!(to_json(&s, Period::Day)["no_data"], json!(true));
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse("week"), Some(Period::Week));
        assert_eq!(Period::parse("year"), Some(Period::Year));
        assert_eq!(Period::parse("decade"), None);
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str()), Some(p));
        }
        assert_eq!(Period::TwoYears.resolution_secs(300), 86_400);
        assert_eq!(Period::Month.resolution_secs(300), 7200);
        assert_eq!(Period::Day.fetch_span_secs(10), 28_800);
        assert_eq!(Period::Day.fetch_span_secs(60), 86_400);
        assert_eq!(Period::Week.fetch_span_secs(10), 7 * 86_400);
        assert_eq!(Period::Day.resolution_secs(0), 1);
        assert_eq!(resolution_for_span(3600, 300), 300);
        assert_eq!(resolution_for_span(5 * 86_400, 300), 1800);
        assert_eq!(resolution_for_span(400 * 86_400, 300), 7200);
    }
}

/// Query of the PNG graph: LibreNMS's `from`/`to` (unix seconds) or a `period`, and the size.
#[derive(Debug, Deserialize)]
pub(crate) struct PngQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// `GET /api/v0/devices/{hostname}/ports/{ifname}/port_bits` — LibreNMS's call of the same
/// name: a PNG of the port's traffic in bits/s (in above the axis, out mirrored below),
/// rendered by `rrdtool graph` from local files or through rrdcached.
pub(crate) async fn port_bits_png(
    reader: GraphReader,
    State(ctx): State<Shared>,
    ApiPath((hostname, ifname)): ApiPath<(String, String)>,
    query: Result<Query<PngQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let (device, port) = crate::api::find_port(&ctx, &reader.access, &hostname, &ifname).await?;
    let now = chrono::Utc::now().timestamp();
    let span = match q.period.as_deref() {
        None => Period::Day.span_secs(),
        Some(p) => Period::parse(p)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "period must be hour, 6h, day, week, month, year or 2y",
                )
            })?
            .span_secs(),
    };
    let (start, end) = crate::timespec::range(q.from.as_deref(), q.to.as_deref(), span, now)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let (width, height) = (q.width.unwrap_or(800), q.height.unwrap_or(250));
    if !(10..=4000).contains(&width) || !(10..=4000).contains(&height) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "width and height must be 10..=4000 pixels",
        ));
    }
    let path = format!("{}/port-id{}.rrd", device.hostname, port.port_id);
    if !ctx
        .state
        .timeseries
        .exists(&path)
        .await
        .map_err(WebError::from)?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("port {ifname} of {hostname} has no data yet"),
        ));
    }
    let line = |ds: &str, scale: f64, color: &str, legend: &str, area: bool| {
        lookout_timeseries::GraphLine {
            path: path.clone(),
            ds: ds.to_string(),
            cf: Cf::Average,
            scale,
            color: color.to_string(),
            legend: legend.to_string(),
            area,
        }
    };
    let request = lookout_timeseries::GraphRequest {
        start,
        end,
        width,
        height,
        title: format!("{} {}", device.hostname, port.label()),
        vertical_label: "bits/s".to_string(),
        lines: vec![
            line("INOCTETS", 8.0, "2E7D32", "In", true),
            line("OUTOCTETS", -8.0, "1565C0", "Out", false),
        ],
    };
    let png = ctx
        .state
        .timeseries
        .graph_png(&request)
        .await
        .map_err(WebError::from)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// `GET /api/v0/devices/{hostname}/ports/{ifname}/series?period=day|week|month` — the JSON
/// series the UI draws, for scripts: the same document as `/graph-data/port/{port_id}`.
pub(crate) async fn port_series(
    reader: GraphReader,
    State(ctx): State<Shared>,
    ApiPath((hostname, ifname)): ApiPath<(String, String)>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, port) = crate::api::find_port(&ctx, &reader.access, &hostname, &ifname).await?;
    self::port(reader, State(ctx), ApiPath(port.port_id.to_string()), query).await
}
