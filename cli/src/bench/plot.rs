//! `--plot`: achieved bandwidth per shape against the copy bandwidth, as an SVG.

use super::Measured;
use crate::error::{CliError, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draw `results`' GB/s per shape (points joined by a line) and the copy bandwidth (dashed).
pub fn bandwidth_svg(path: &Path, title: &str, results: &[Measured], copy_gbs: f64) -> Result<()> {
    draw(path, title, results, copy_gbs).map_err(|e| CliError::Io {
        path: path.into(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn draw(
    path: &Path,
    title: &str,
    results: &[Measured],
    copy_gbs: f64,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let n = results.len().max(1);
    let top = results.iter().map(|m| m.gbs).fold(copy_gbs, f64::max) * 1.1;
    let root = SVGBackend::new(path, ((100 + 48 * n as u32).max(720), 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(110)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            results.get(i as usize).map_or(String::new(), |m| {
                if results.iter().filter(|o| o.shape == m.shape).count() > 1 {
                    format!(
                        "{} {}",
                        m.shape,
                        m.kernel.split_whitespace().next().unwrap_or("")
                    )
                } else {
                    m.shape.clone()
                }
            })
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc("achieved GB/s (bytes moved once / median GPU time)")
        .disable_x_mesh()
        .draw()?;
    let points: Vec<(f64, f64)> = results
        .iter()
        .enumerate()
        .map(|(i, m)| (i as f64, m.gbs))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))?
        .label("achieved")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    chart
        .draw_series(DashedLineSeries::new(
            [(-0.5, copy_gbs), (n as f64 - 0.5, copy_gbs)],
            8,
            6,
            RED.stroke_width(2),
        ))?
        .label(format!("device copy {copy_gbs:.0} GB/s"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bw.svg");
        let results = vec![
            Measured::new(
                "1x8192".into(),
                "f32 threads=512 parts=1".into(),
                10.0,
                40_000,
                3000.0,
            ),
            Measured::new(
                "64x131072".into(),
                "f32 threads=512 parts=5".into(),
                20.0,
                34_000_000,
                3000.0,
            ),
        ];
        bandwidth_svg(&path, "test", &results, 3000.0).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("64x131072"),
            "{svg}"
        );
    }
}
