//! One SVG per figure: its value against N, ours and KEDA's.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::prelude::*;

use super::report::{FIGURES, Figure, RunResult};

/// The (N, value) points of `figure` for `operator` at `poll`, by N.
pub fn points(
    results: &[RunResult],
    figure: &Figure,
    operator: &str,
    poll: u32,
) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = results
        .iter()
        .filter(|r| r.operator == operator && r.polling_interval_s == poll)
        .filter_map(|r| Some((r.objects as f64, (figure.read)(r)?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Writes `<dir>/<figure>-poll<P>s.svg` for every figure with at least one point; returns the
/// files with their figure's title.
pub fn write_all(results: &[RunResult], dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    std::fs::create_dir_all(dir)?;
    let mut polls: Vec<u32> = results.iter().map(|r| r.polling_interval_s).collect();
    polls.sort_unstable();
    polls.dedup();
    let mut written = Vec::new();
    for poll in polls {
        for figure in FIGURES {
            let ours = points(results, figure, "builtin", poll);
            let keda = points(results, figure, "upstream", poll);
            if ours.is_empty() && keda.is_empty() {
                continue;
            }
            let path = dir.join(format!("{}-poll{poll}s.svg", figure.id));
            let title = format!(
                "{} ({}), pollingInterval {poll} s",
                figure.title, figure.unit
            );
            draw(&path, &title, &ours, &keda).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            written.push((figure.title.to_string(), path));
        }
    }
    Ok(written)
}

fn draw(
    path: &Path,
    title: &str,
    ours: &[(f64, f64)],
    keda: &[(f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let all = ours.iter().chain(keda);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let y_max = all.map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("N (ScaledObjects)").draw()?;
    for (points, colour, name) in [(ours, BLUE, "ours"), (keda, RED, "KEDA")] {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_one_operator_s_values_by_n() {
        let r = |op: &str, n: usize, rss: f64| RunResult {
            operator: op.into(),
            objects: n,
            polling_interval_s: 30,
            rss_mib: Some(rss),
            ..RunResult::default()
        };
        let results = [
            r("builtin", 1000, 60.0),
            r("upstream", 100, 200.0),
            r("builtin", 100, 30.0),
        ];
        let rss = FIGURES.iter().find(|f| f.id == "rss").unwrap();
        assert_eq!(
            points(&results, rss, "builtin", 30),
            [(100.0, 30.0), (1000.0, 60.0)]
        );
        assert!(points(&results, rss, "builtin", 5).is_empty());
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(&results, dir.path()).unwrap();
        assert!(files.iter().any(|(_, p)| p.ends_with("rss-poll30s.svg")));
        let svg = std::fs::read_to_string(dir.path().join("rss-poll30s.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("KEDA"));
    }
}
