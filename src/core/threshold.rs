//! Metric thresholds (`"used > 85%"`) and how a reading becomes a status.

use std::fmt;

use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading, Unit};
use crate::core::probe_kind::ProbeKind;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One threshold: `METRIC OP VALUE[%|K|M|G|T|KiB|…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub metric: String,
    pub op: Op,
    /// In the metric's own unit (bytes for byte suffixes).
    pub value: f64,
    /// The text as written, for details and `policy show`.
    pub text: String,
    /// The metric may be absent on some hosts; the condition is then skipped.
    pub optional: bool,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A parse error with the character offset inside the condition text.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionError {
    pub offset: usize,
    pub message: String,
}

fn byte_suffix(s: &str) -> Option<f64> {
    Some(match s {
        "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "Ki" | "KiB" => 1024.0,
        "Mi" | "MiB" => 1024.0 * 1024.0,
        "Gi" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "Ti" | "TiB" => 1024.0_f64.powi(4),
        _ => return None,
    })
}

/// Parses a condition and checks it against the metrics of `probe`.
pub fn parse(text: &str, probe: ProbeKind) -> Result<Condition, ConditionError> {
    let err = |offset: usize, message: String| ConditionError { offset, message };
    let trimmed_start = text.len() - text.trim_start().len();
    let rest = &text[trimmed_start..];
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let metric = &rest[..name_len];
    let known: Vec<&str> = probe.metrics().iter().map(|m| m.name).collect();
    if metric.is_empty() {
        return Err(err(
            trimmed_start,
            format!(
                "expected a metric name such as `{}`, then an operator and a value",
                known[0]
            ),
        ));
    }
    let Some(spec) = probe.metric(metric) else {
        return Err(err(
            trimmed_start,
            format!(
                "probe `{probe}` has no metric `{metric}`; it has: {}",
                known.join(", ")
            ),
        ));
    };
    let mut pos = trimmed_start + name_len;
    pos += text[pos..].len() - text[pos..].trim_start().len();
    let ops = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];
    let Some(&(op_text, op)) = ops.iter().find(|(t, _)| text[pos..].starts_with(t)) else {
        return Err(err(
            pos,
            "expected an operator: >, >=, <, <=, == or !=".into(),
        ));
    };
    pos += op_text.len();
    pos += text[pos..].len() - text[pos..].trim_start().len();
    let value_start = pos;
    let value_text = text[pos..].trim_end();
    let num_len = value_text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(value_text.len());
    let number: f64 = value_text[..num_len]
        .parse()
        .map_err(|_| err(value_start, format!("expected a number after `{op_text}`")))?;
    if !number.is_finite() {
        return Err(err(value_start, "expected a finite number".into()));
    }
    let suffix = value_text[num_len..].trim();
    let suffix_at = value_start + num_len;
    let value = match suffix {
        "" => {
            if spec.unit == Unit::Percent {
                return Err(err(
                    suffix_at,
                    format!("`{metric}` is a percentage: write the value with %, e.g. `{metric} {op_text} {number}%`"),
                ));
            }
            number
        }
        "%" => {
            if spec.unit != Unit::Percent {
                return Err(err(suffix_at, format!("`{metric}` is in {}, not a percentage", spec.unit)));
            }
            if !(0.0..=100.0).contains(&number) {
                return Err(err(value_start, "a percentage is between 0 and 100".into()));
            }
            number
        }
        s => match byte_suffix(s) {
            Some(mult) if spec.unit == Unit::Bytes => number * mult,
            Some(_) => {
                return Err(err(suffix_at, format!("`{metric}` is in {}, not bytes", spec.unit)))
            }
            None => {
                return Err(err(
                    suffix_at,
                    format!("unknown unit `{s}`: expected %, or a byte size (K, M, G, T, KiB, MiB, GiB, TiB)"),
                ))
            }
        },
    };
    Ok(Condition {
        metric: metric.to_string(),
        op,
        value,
        text: format!("{metric} {} {}", op.as_str(), value_text.trim()),
        optional: spec.optional,
    })
}

fn fmt_value(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// What a list of conditions says about some metrics.
enum Verdict {
    /// The first condition that holds, with the value it saw.
    Fired(String),
    /// A metric the condition needs was not reported.
    Missing(String),
    Clear,
}

fn judge(conds: &[Condition], metrics: &Metrics) -> Verdict {
    let mut missing = None;
    for c in conds {
        match metrics.get(&c.metric) {
            Some(&v) if c.op.holds(v, c.value) => {
                return Verdict::Fired(format!("{} is {} ({})", c.metric, fmt_value(v), c.text));
            }
            Some(_) => {}
            None if c.optional => {}
            None => missing = missing.or(Some(c.metric.clone())),
        }
    }
    missing.map_or(Verdict::Clear, Verdict::Missing)
}

/// The status and detail of a check from its reading and thresholds. Pure.
pub fn evaluate(warn: &[Condition], crit: &[Condition], reading: &Reading) -> (Status, String) {
    let (probe_status, detail, metrics) = match reading {
        Reading::Unknown(why) => return (Status::Unknown, why.clone()),
        Reading::Group(members) => {
            // A group is judged member by member; on its own it is only a count.
            return (Status::Ok, format!("{} matched", members.len()));
        }
        Reading::Value {
            status,
            detail,
            metrics,
        } => (*status, detail, metrics),
    };
    let (threshold_status, why) = match judge(crit, metrics) {
        Verdict::Fired(why) => (Status::Crit, Some(why)),
        Verdict::Missing(m) => (
            Status::Unknown,
            Some(format!(
                "metric `{m}` was not reported, so the crit threshold cannot be judged"
            )),
        ),
        Verdict::Clear => match judge(warn, metrics) {
            Verdict::Fired(why) => (Status::Warn, Some(why)),
            Verdict::Missing(m) => (
                Status::Unknown,
                Some(format!(
                    "metric `{m}` was not reported, so the warn threshold cannot be judged"
                )),
            ),
            Verdict::Clear => (Status::Ok, None),
        },
    };
    if probe_status == Some(Status::Crit) && threshold_status == Status::Unknown {
        // The probe already knows it is broken (Ollama hangs): missing metrics are why,
        // not news.
        return (Status::Crit, detail.clone());
    }
    let status = probe_status.unwrap_or(Status::Ok).worst(threshold_status);
    let detail = match why {
        Some(why) => format!("{why}; {detail}"),
        None => detail.clone(),
    };
    (status, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Condition {
        parse(s, ProbeKind::Disk).unwrap()
    }

    #[test]
    fn parses_the_design_examples() {
        let x = c("used > 85%");
        assert_eq!((x.metric.as_str(), x.op, x.value), ("used", Op::Gt, 85.0));
        assert_eq!(c("inodes_used >= 95 %").op, Op::Ge);
        assert_eq!(
            c("avail_bytes < 2GiB").value,
            2.0 * 1024.0 * 1024.0 * 1024.0
        );
        assert_eq!(c("  hours_to_full<24").value, 24.0);
        let t = parse("temperature > 90", ProbeKind::Thermal).unwrap();
        assert_eq!(t.value, 90.0);
        assert_eq!(t.text, "temperature > 90");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("usd > 85%", ProbeKind::Disk).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(
            e.message.contains("no metric `usd`") && e.message.contains("used"),
            "{}",
            e.message
        );
        let e = parse("used 85%", ProbeKind::Disk).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("operator"));
        let e = parse("used > lots", ProbeKind::Disk).unwrap_err();
        assert_eq!(e.offset, 7);
        let e = parse("used > 85", ProbeKind::Disk).unwrap_err();
        assert!(e.message.contains("percentage"), "{}", e.message);
        let e = parse("temperature > 90%", ProbeKind::Thermal).unwrap_err();
        assert_eq!(e.offset, 16);
        let e = parse("used > 150%", ProbeKind::Disk).unwrap_err();
        assert!(e.message.contains("between 0 and 100"));
        let e = parse("used_bytes > 5 parsecs", ProbeKind::Disk).unwrap_err();
        assert!(e.message.contains("unknown unit `parsecs`"));
        let e = parse("", ProbeKind::Disk).unwrap_err();
        assert!(e.message.contains("expected a metric name"));
    }

    fn reading(pairs: &[(&str, f64)]) -> Reading {
        Reading::metrics(
            "base",
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<Metrics>(),
        )
    }

    #[test]
    fn crit_wins_over_warn_and_lists_match_any() {
        let warn = vec![c("used > 85%")];
        let crit = vec![c("used > 95%"), c("inodes_used > 95%")];
        assert_eq!(
            evaluate(
                &warn,
                &crit,
                &reading(&[("used", 50.0), ("inodes_used", 1.0)])
            )
            .0,
            Status::Ok
        );
        let (s, d) = evaluate(
            &warn,
            &crit,
            &reading(&[("used", 90.0), ("inodes_used", 1.0)]),
        );
        assert_eq!(s, Status::Warn);
        assert_eq!(d, "used is 90 (used > 85%); base");
        let (s, d) = evaluate(
            &warn,
            &crit,
            &reading(&[("used", 10.0), ("inodes_used", 99.5)]),
        );
        assert_eq!(s, Status::Crit);
        assert!(d.starts_with("inodes_used is 99.50"), "{d}");
    }

    #[test]
    fn missing_metric_makes_unknown_but_a_fired_crit_still_counts() {
        let crit = vec![c("used > 95%"), c("inodes_used > 95%")];
        let (s, d) = evaluate(&[], &crit, &reading(&[("used", 50.0)]));
        assert_eq!(s, Status::Unknown);
        assert!(d.contains("`inodes_used` was not reported"), "{d}");
        assert_eq!(
            evaluate(&[], &crit, &reading(&[("used", 99.0)])).0,
            Status::Crit
        );
    }

    #[test]
    fn a_broken_probe_is_crit_with_its_own_reason_not_a_missing_metric_note() {
        let crit = vec![c("used > 95%")];
        let r = Reading::Value {
            status: Some(Status::Crit),
            detail: "does not answer".into(),
            metrics: Metrics::new(),
        };
        assert_eq!(
            evaluate(&[], &crit, &r),
            (Status::Crit, "does not answer".into())
        );
    }

    #[test]
    fn optional_metrics_are_skipped_when_absent() {
        let crit = vec![
            parse("psi_memory_full_avg10 > 10%", ProbeKind::Memory).unwrap(),
            parse("available < 5%", ProbeKind::Memory).unwrap(),
        ];
        assert_eq!(
            evaluate(&[], &crit, &reading(&[("available", 50.0)])).0,
            Status::Ok
        );
        assert_eq!(
            evaluate(
                &[],
                &crit,
                &reading(&[("available", 50.0), ("psi_memory_full_avg10", 20.0)])
            )
            .0,
            Status::Crit
        );
    }

    #[test]
    fn probe_status_and_unknown_reading() {
        let r = Reading::Value {
            status: Some(Status::Crit),
            detail: "unit failed".into(),
            metrics: Metrics::new(),
        };
        assert_eq!(evaluate(&[], &[], &r), (Status::Crit, "unit failed".into()));
        let r = Reading::Unknown("no such file".into());
        assert_eq!(
            evaluate(&[c("used > 1%")], &[], &r),
            (Status::Unknown, "no such file".into())
        );
    }

    #[test]
    fn infinite_hours_to_full_never_fires_below() {
        let crit = vec![c("hours_to_full < 24")];
        assert_eq!(
            evaluate(&[], &crit, &reading(&[("hours_to_full", f64::INFINITY)])).0,
            Status::Ok
        );
        assert_eq!(
            evaluate(&[], &crit, &reading(&[("hours_to_full", 3.5)])).0,
            Status::Crit
        );
    }
}
