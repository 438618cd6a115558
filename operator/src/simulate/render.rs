//! The replay as text (a table of what changed, moment by moment) and as a self-contained SVG
//! (metric values above, replicas below, events as marks on a shared time axis).

use std::fmt::Write as _;

use super::{Timeline, Who};

fn clock(ms: i64) -> String {
    let total = ms / 1000;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let frac = ms % 1000;
    let base = if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    };
    if frac == 0 {
        base
    } else {
        format!("{base}+{frac}ms")
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.3}"),
        None => "error".to_string(),
    }
}

/// The timeline as a table: a row whenever a value, the replicas or a condition changes, or an
/// event happens.
pub fn text(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ScaledObject {}", t.name);
    let _ = writeln!(out, "  {}", t.settings.join(" · "));
    let _ = writeln!(out);
    let mut header = format!("{:>10}  {:>8}", "time", "replicas");
    for label in &t.trigger_labels {
        let _ = write!(header, "  {label:>12}");
    }
    let _ = writeln!(out, "{header}  what happened");

    let mut moments: Vec<i64> = t.replicas.iter().map(|(at, _)| *at).collect();
    moments.extend(t.happenings.iter().map(|h| h.at_ms));
    for values in &t.values {
        let mut last: Option<Option<f64>> = None;
        for (at, v) in values {
            if last != Some(*v) {
                moments.push(*at);
                last = Some(*v);
            }
        }
    }
    moments.sort_unstable();
    moments.dedup();

    let replicas_at = |at: i64| {
        t.replicas
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |(_, r)| *r)
    };
    // The chain of counts a moment went through (the first entry is the initial count).
    let chain = |at: i64| -> Option<String> {
        let first = t.replicas.iter().skip(1).position(|(x, _)| *x == at)? + 1;
        let last = t.replicas.iter().rposition(|(x, _)| *x == at)?;
        let counts: Vec<String> = t.replicas[first - 1..=last]
            .iter()
            .map(|(_, r)| r.to_string())
            .collect();
        Some(counts.join(" → "))
    };
    for at in moments {
        let replicas = chain(at).unwrap_or_else(|| replicas_at(at).to_string());
        let mut row = format!("{:>10}  {replicas:>8}", clock(at));
        for values in &t.values {
            let v = values
                .iter()
                .take_while(|(t, _)| *t <= at)
                .last()
                .map(|(_, v)| number(*v))
                .unwrap_or_else(|| "-".into());
            let _ = write!(row, "  {v:>12}");
        }
        let what: Vec<String> = t
            .happenings
            .iter()
            .filter(|h| h.at_ms == at)
            .map(|h| match h.who {
                Who::Keda => format!("{}: {}", h.reason, h.message),
                Who::Hpa => format!("HPA {}: {}", h.reason, h.message),
                Who::Condition => h.message.clone(),
            })
            .collect();
        let _ = writeln!(out, "{row}  {}", what.join("; "));
    }
    let _ = writeln!(out);
    for note in &t.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];

/// The timeline as a standalone SVG document.
pub fn svg(t: &Timeline) -> String {
    const W: f64 = 960.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP_Y: f64 = 50.0;
    const TOP_H: f64 = 200.0;
    const BOTTOM_Y: f64 = 300.0;
    const BOTTOM_H: f64 = 160.0;
    const H: f64 = 520.0;
    let end = t.end_ms.max(1) as f64;
    let x = |ms: i64| LEFT + (ms as f64 / end) * (W - LEFT - RIGHT);

    let max_value = t
        .values
        .iter()
        .flatten()
        .filter_map(|(_, v)| *v)
        .chain(t.trigger_targets.iter().flatten().copied())
        .fold(1.0f64, f64::max);
    let max_replicas = t.replicas.iter().map(|(_, r)| *r).max().unwrap_or(1).max(1);
    let vy = |v: f64| TOP_Y + TOP_H - (v / max_value) * TOP_H;
    let ry = |r: i32| BOTTOM_Y + BOTTOM_H - (f64::from(r) / f64::from(max_replicas)) * BOTTOM_H;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">ScaledObject {}</text>"#,
        escape(&t.name)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="36" fill="#555">{}</text>"##,
        escape(&t.settings.join(" · "))
    );
    // Axes and labels.
    for (y, h, label) in [
        (
            TOP_Y,
            TOP_H,
            format!("metric (max {})", number(Some(max_value))),
        ),
        (BOTTOM_Y, BOTTOM_H, format!("replicas (max {max_replicas})")),
    ] {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{y}" width="{}" height="{h}" fill="none" stroke="#ccc"/>"##,
            W - LEFT - RIGHT
        );
        let _ = writeln!(
            s,
            r##"<text x="5" y="{}" fill="#333">{}</text>"##,
            y + 12.0,
            escape(&label)
        );
    }
    let ticks = 8;
    for i in 0..=ticks {
        let ms = (end as i64) * i / ticks;
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            x(ms),
            BOTTOM_Y + BOTTOM_H + 16.0,
            clock(ms)
        );
    }
    // Events: a vertical mark through both panels, with the message as a tooltip.
    for h in &t.happenings {
        let color = match h.who {
            Who::Keda => "#d62728",
            Who::Hpa => "#7f7f7f",
            Who::Condition => continue,
        };
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" y1="{TOP_Y}" x2="{0:.1}" y2="{1}" stroke="{color}" stroke-dasharray="3,3"><title>{2} {3}: {4}</title></line>"#,
            x(h.at_ms),
            BOTTOM_Y + BOTTOM_H,
            clock(h.at_ms),
            escape(&h.reason),
            escape(&h.message)
        );
    }
    // Metric values (steps) and each trigger's target.
    for (i, values) in t.values.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut points = String::new();
        let mut last: Option<f64> = None;
        for (at, v) in values {
            let Some(v) = v else {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{TOP_Y}" r="3" fill="{color}"><title>{} error</title></circle>"#,
                    x(*at),
                    clock(*at)
                );
                continue;
            };
            if let Some(prev) = last {
                let _ = write!(points, "{:.1},{:.1} ", x(*at), vy(prev));
            }
            let _ = write!(points, "{:.1},{:.1} ", x(*at), vy(*v));
            last = Some(*v);
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>"#
        );
        if let Some(target) = t.trigger_targets.get(i).copied().flatten() {
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="{color}" stroke-dasharray="6,4" opacity="0.6"><title>target {2}</title></line>"#,
                vy(target),
                W - RIGHT,
                number(Some(target))
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" fill="{color}">{}</text>"#,
            LEFT + 10.0 + 140.0 * i as f64,
            TOP_Y + TOP_H + 16.0,
            escape(&t.trigger_labels[i])
        );
    }
    // Replicas (steps).
    let mut points = String::new();
    let mut last: Option<i32> = None;
    for (at, r) in &t.replicas {
        if let Some(prev) = last {
            let _ = write!(points, "{:.1},{:.1} ", x(*at), ry(prev));
        }
        let _ = write!(points, "{:.1},{:.1} ", x(*at), ry(*r));
        last = Some(*r);
    }
    if let Some(r) = last {
        let _ = write!(points, "{:.1},{:.1}", x(t.end_ms), ry(r));
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{points}" fill="none" stroke="#111" stroke-width="2.5"/>"##
    );
    let _ = writeln!(s, "</svg>");
    s
}
