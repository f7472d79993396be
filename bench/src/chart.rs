//! The SVG chart of a report: one panel per workload, throughput against batch size on
//! log-log axes, one line per backend and one for the baseline.

use plotters::prelude::*;

use crate::{BenchError, Report, Workload, measure::si};

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// Draws the report as an SVG document.
pub fn render_svg(report: &Report) -> Result<String, BenchError> {
    let ops: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|op| report.rows.iter().any(|r| r.op == *op && r.error.is_none()))
        .collect();
    let mut svg = String::new();
    {
        let height = 360 * ops.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let panels = root.split_evenly((ops.len().max(1), 1));
        for (panel, op) in panels.iter().zip(&ops) {
            draw_panel(panel, report, *op)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

fn chart_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Chart(e.to_string())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
    op: Workload,
) -> Result<(), BenchError>
where
    DB::ErrorType: 'static,
{
    let rows: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.op == op && r.error.is_none() && r.items_per_sec > 0.0)
        .collect();
    let base: Vec<(f64, f64)> = report
        .baselines
        .iter()
        .filter(|b| b.op == op && b.items_per_sec > 0.0)
        .map(|b| (b.batch as f64, b.items_per_sec))
        .collect();
    let xs = rows.iter().map(|r| r.batch as f64);
    let (x_min, x_max) = xs.fold((f64::MAX, 1.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let ys = rows
        .iter()
        .map(|r| r.items_per_sec)
        .chain(base.iter().map(|b| b.1));
    let (y_min, y_max) = ys.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{op}: {} per second by batch size", op.item_unit()),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x_min.max(1.0) * 0.8..x_max * 1.25).log_scale(),
            (y_min.max(1.0) * 0.5..y_max * 2.0).log_scale(),
        )
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc("batch size")
        .y_desc(format!("{}/s", op.item_unit()))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| si(*y))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(chart_err)?;

    let mut backends: Vec<_> = rows.iter().map(|r| r.backend).collect();
    backends.dedup();
    for (i, backend) in backends.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.backend == *backend)
            .map(|r| (r.batch as f64, r.items_per_sec))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(chart_err)?
            .label(backend.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(chart_err)?;
    }
    if !base.is_empty() {
        let grey = RGBColor(0x55, 0x55, 0x55);
        chart
            .draw_series(LineSeries::new(base.clone(), grey.stroke_width(1)))
            .map_err(chart_err)?
            .label("baseline: cpu, one at a time, one thread")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], grey));
        chart
            .draw_series(base.into_iter().map(|p| Cross::new(p, 4, grey)))
            .map_err(chart_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(chart_err)?;
    Ok(())
}
