//! An SVG chart of a comparison: per operation, one bar per kernel for its
//! ratio to that run's fork baseline, on a log scale, so that a person sees
//! at a glance which operations cost more on which kernel.

use plotters::backend::SVGBackend;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::compare::{Cell, Comparison};
use crate::report::Unit;

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// No operation has a ratio to fork in any report.
    #[error("no figure with a ratio to fork to draw")]
    Empty,
    /// plotters failed.
    #[error("drawing the chart: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// Colours of the kernels, in column order (then repeating).
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The rows drawn: whole operations with a time unit (not the create /
/// exit_reap parts), with each report's ratio to fork.
fn bars(c: &Comparison) -> Vec<(String, Vec<Option<f64>>, bool)> {
    c.rows
        .iter()
        .filter(|r| r.unit == Unit::Ns && !r.id.contains(':'))
        .map(|r| {
            let ratios: Vec<Option<f64>> = r
                .cells
                .iter()
                .map(|cell| match cell {
                    Cell::Value { figure, .. } => figure.ratio_to_fork.filter(|v| *v > 0.0),
                    _ => None,
                })
                .collect();
            let flagged = r.cells.iter().any(|cell| matches!(cell, Cell::Value { ratio_change: Some(ch), .. } if ch.beyond_noise));
            (r.id.clone(), ratios, flagged)
        })
        .filter(|(_, ratios, _)| ratios.iter().any(Option::is_some))
        .collect()
}

/// Draws the comparison as an SVG document.
pub fn svg(c: &Comparison) -> Result<String, ChartError> {
    let rows = bars(c);
    if rows.is_empty() {
        return Err(ChartError::Empty);
    }
    let kernels = c.labels.len().max(1);
    let row_px = (kernels as u32 * 9 + 8).max(18);
    let (width, height) = (1100u32, 110 + rows.len() as u32 * row_px);
    let values = rows.iter().flat_map(|(_, r, _)| r.iter().flatten().copied());
    let (min, max) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let n = rows.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("Cost relative to fork (clone(SIGCHLD)+_exit+wait) of the same run — log scale", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(230)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("× fork (1 = one plain fork+exit+wait)")
            .x_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { format!("{v}") })
            .draw()
            .map_err(draw_err)?;
        let band = 0.8 / kernels as f64;
        for (k, label) in c.labels.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let rects = rows.iter().enumerate().filter_map(|(i, (_, ratios, _))| {
                let v = (*ratios.get(k)?)?;
                // Row i from the top; kernel k's bar inside its band.
                let top = n - i as f64 - 0.1 - band * k as f64;
                Some(Rectangle::new([(lo, top - band), (v, top)], colour.filled()))
            });
            chart
                .draw_series(rects)
                .map_err(draw_err)?
                .label(label.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        chart.draw_series(std::iter::once(PathElement::new(vec![(1.0, 0.0), (1.0, n)], BLACK.stroke_width(1)))).map_err(draw_err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()
            .map_err(draw_err)?;
        // Each bar's value at its end, so that no one has to read a log axis.
        let small = ("sans-serif", 10).into_font().into_text_style(&root).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (_, ratios, _)) in rows.iter().enumerate() {
            for (k, v) in ratios.iter().enumerate() {
                let Some(v) = v else { continue };
                let (x, y) = chart.backend_coord(&(*v, n - i as f64 - 0.1 - band * (k as f64 + 0.5)));
                root.draw(&Text::new(crate::suite::fmt_ratio(*v), (x + 3, y), small.clone())).map_err(draw_err)?;
            }
        }
        let style = ("sans-serif", 13).into_font().into_text_style(&root).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (id, _, flagged)) in rows.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(lo, n - i as f64 - 0.5));
            let text = if *flagged { format!("{id} (!)") } else { id.clone() };
            root.draw(&Text::new(text, (x - 6, y), style.clone())).map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, DEFAULT_NOISE};
    use crate::report::tests::sample;

    #[test]
    fn draws_every_operation_and_kernel() {
        let c = compare(&[sample("6.1.0", 80_000.0, 320_000.0), sample("6.18.44", 80_000.0, 480_000.0)], DEFAULT_NOISE);
        let svg = svg(&c).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        for needle in ["baseline/fork", "clone/net (!)", "6.1.0", "6.18.44"] {
            assert!(svg.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn nothing_to_draw() {
        let mut r = sample("6.1.0", 80_000.0, 320_000.0);
        r.figures.iter_mut().for_each(|f| f.ratio_to_fork = None);
        assert!(matches!(svg(&compare(&[r], DEFAULT_NOISE)), Err(ChartError::Empty)));
    }
}
