//! PNG pictures for `calltype eval`: a confusion matrix and training curves.
//!
//! Drawn with plotters' bitmap backend and an embedded DejaVu Sans font (ab_glyph), so no
//! system font library or fontconfig is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

/// The font family every text here uses.
const FONT: &str = "sans-serif";

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // plotters' own elements (chart captions, tick labels) ask for these families.
        for family in ["sans-serif", "serif", "monospace"] {
            if plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular())
                .is_err()
            {
                tracing::warn!(family, "embedded font rejected");
            }
            let _ = plotters::style::register_font(family, FontStyle::Bold, dejavu::sans::bold());
        }
    });
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

fn text_style(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(h, v))
}

/// Approximate width in pixels of `s` at `size`, for layout.
fn text_width(s: &str, size: f64) -> u32 {
    (s.chars().count() as f64 * size * 0.6).ceil() as u32
}

/// White to dark blue by `share` in [0, 1].
fn shade(share: f64) -> RGBColor {
    let s = share.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * s).round() as u8;
    RGBColor(lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0))
}

/// Draws `confusion[true][predicted]` as a grid: rows are true labels (named on the left with
/// their number), columns predicted labels (numbered on top); the shade is the share of the
/// row, and counts are written in the cells when they fit.
pub fn confusion_png(path: &Path, labels: &[String], confusion: &[Vec<usize>]) -> Result<()> {
    register_fonts();
    let n = labels.len().max(1);
    let cell = (640 / n as u32).clamp(12, 64);
    let label_size = 13.0;
    let row_names: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}. {l}", i + 1))
        .collect();
    let left = 20
        + row_names
            .iter()
            .map(|s| text_width(s, label_size))
            .max()
            .unwrap_or(0);
    let top = 78u32;
    let grid = cell * n as u32;
    let title = "Confusion matrix";
    let subtitle = "rows: true label, columns: predicted label (numbered as the rows); shade: share of the row";
    let width = (left + grid + 30)
        .max(text_width(subtitle, 12.0) + 30)
        .max(360);
    let height = top + grid + 30;

    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    root.draw(&Text::new(
        title,
        (15, 10),
        text_style(18.0, HPos::Left, VPos::Top),
    ))
    .map_err(plot_err)?;
    root.draw(&Text::new(
        subtitle,
        (15, 34),
        text_style(12.0, HPos::Left, VPos::Top).color(&RGBColor(90, 90, 90)),
    ))
    .map_err(plot_err)?;

    let x0 = left as i32;
    let y0 = top as i32;
    let c = cell as i32;
    let count_size = (cell as f64 * 0.4).min(14.0);
    for (t, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = y0 + t as i32 * c;
        root.draw(&Text::new(
            row_names[t].clone(),
            (x0 - 6, y + c / 2),
            text_style(label_size, HPos::Right, VPos::Center),
        ))
        .map_err(plot_err)?;
        for (p, &count) in row.iter().enumerate() {
            let x = x0 + p as i32 * c;
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + c, y + c)],
                shade(share).filled(),
            ))
            .map_err(plot_err)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + c, y + c)],
                RGBColor(210, 210, 210).stroke_width(1),
            ))
            .map_err(plot_err)?;
            if count > 0 && cell >= 20 {
                let color = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    count.to_string(),
                    (x + c / 2, y + c / 2),
                    text_style(count_size, HPos::Center, VPos::Center).color(&color),
                ))
                .map_err(plot_err)?;
            }
        }
        // The diagonal cell gets a dark outline so misses stand out.
        let d = x0 + t as i32 * c;
        root.draw(&Rectangle::new(
            [(d, y), (d + c, y + c)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err)?;
    }
    let index_size = (cell as f64 * 0.55).clamp(8.0, 12.0);
    for p in 0..n {
        if cell < 16 && (p + 1) % 5 != 0 && p != 0 {
            continue;
        }
        root.draw(&Text::new(
            (p + 1).to_string(),
            (x0 + p as i32 * c + c / 2, y0 - 4),
            text_style(index_size, HPos::Center, VPos::Bottom),
        ))
        .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// One epoch of `training_log.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_loss: Option<f64>,
    pub dev_accuracy: Option<f64>,
    pub dev_macro_f1: Option<f64>,
}

/// Two panels: training and dev loss per epoch; dev accuracy and macro-F1 per epoch.
pub fn training_curve_png(path: &Path, epochs: &[EpochPoint]) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (left, right) = root.split_horizontally(500);
    let last = epochs.iter().map(|e| e.epoch).max().unwrap_or(1) as f64;
    let x_range = 0.8..(last + 0.2).max(1.2);
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    let green = RGBColor(44, 160, 44);

    let max_loss = epochs
        .iter()
        .flat_map(|e| [Some(e.train_loss), e.dev_loss])
        .flatten()
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let mut chart = ChartBuilder::on(&left)
        .caption("Loss per epoch", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range.clone(), 0.0..max_loss * 1.1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(epochs.len().clamp(2, 10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    let train: Vec<(f64, f64)> = epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    chart
        .draw_series(LineSeries::new(train, blue.stroke_width(2)).point_size(3))
        .map_err(plot_err)?
        .label("train")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
    let dev: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| e.dev_loss.map(|l| (e.epoch as f64, l)))
        .collect();
    if !dev.is_empty() {
        chart
            .draw_series(LineSeries::new(dev, orange.stroke_width(2)).point_size(3))
            .map_err(plot_err)?
            .label("dev")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], orange.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;

    let mut chart = ChartBuilder::on(&right)
        .caption("Dev accuracy and macro-F1", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range, 0.0..1.05)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(epochs.len().clamp(2, 10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    let series = [
        (
            "accuracy",
            blue,
            epochs
                .iter()
                .filter_map(|e| e.dev_accuracy.map(|v| (e.epoch as f64, v)))
                .collect::<Vec<_>>(),
        ),
        (
            "macro-F1",
            green,
            epochs
                .iter()
                .filter_map(|e| e.dev_macro_f1.map(|v| (e.epoch as f64, v)))
                .collect(),
        ),
    ];
    let mut any = false;
    for (name, color, points) in series {
        if points.is_empty() {
            continue;
        }
        any = true;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(3))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if any {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
    } else {
        right
            .draw(&Text::new(
                "no dev data",
                (250, 210),
                text_style(16.0, HPos::Center, VPos::Center),
            ))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}
