//! Which windows of a long call look like the calls a model was trained on ([`Pool::Familiar`]).
//!
//! A fine-tuned classifier is confidently wrong on talk it never saw: a model trained on STAR
//! calls reads a recorded-line notice or a hold as `bank_fraud_report` with probability 0.99,
//! so max pooling over a long call's windows lets one such window outvote the part that
//! decides the call. But the features the classification layer reads (the BERT pooler's
//! output) tell the two apart: every training sequence lies near the centre of its label's
//! features, and windows of generic call-centre talk lie far from every centre (on the
//! long-call benchmark, a hundred times farther than the nearest window of the same call; see
//! docs/long-calls.md). So a long call is labelled from its *familiar* windows only: those
//! within [`Centroids::radius`] of some label's centre, or, when none is, the nearest one.
//! Nothing here depends on the wording of the generic talk: only the training calls define
//! what is familiar.
//!
//! [`Centroids`] are fitted by `train` from the features of the sequences the model trained
//! on, and saved beside the weights ([`CENTROIDS_FILE`]).
//!
//! [`Pool::Familiar`]: crate::Pool::Familiar

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::ModelError;

/// File beside `model.safetensors` with the label centres and the radius.
pub const CENTROIDS_FILE: &str = "centroids.safetensors";

/// Share of the training sequences within the radius of their nearest centre.
pub const RADIUS_QUANTILE: f64 = 0.95;

/// The centre of each label's features over its training sequences, and the distance from
/// its nearest centre within which a window counts as familiar.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    /// One centre per label, in label order, each of the feature width.
    pub centres: Vec<Vec<f32>>,
    /// The [`RADIUS_QUANTILE`] of the training sequences' [`Self::distance`]s.
    pub radius: f32,
}

impl Centroids {
    /// Fits the centres of `features` (one row per training sequence) by `labels` (its label
    /// id, below `classes`). A label without sequences gets no centre it could be near (its
    /// centre is left at infinity). Fails on no rows or rows of different widths.
    pub fn fit(
        features: &[Vec<f32>],
        labels: &[usize],
        classes: usize,
    ) -> Result<Self, ModelError> {
        let width = features.first().map_or(0, Vec::len);
        if width == 0 || features.len() != labels.len() {
            return Err(ModelError::Data(
                "centroids need one label per feature row".into(),
            ));
        }
        let mut sums = vec![vec![0f64; width]; classes];
        let mut counts = vec![0usize; classes];
        for (f, &l) in features.iter().zip(labels) {
            if f.len() != width || l >= classes {
                return Err(ModelError::Data(
                    "ragged features or a label out of range".into(),
                ));
            }
            counts[l] += 1;
            for (s, &x) in sums[l].iter_mut().zip(f) {
                *s += x as f64;
            }
        }
        let centres = sums
            .into_iter()
            .zip(&counts)
            .map(|(s, &n)| {
                s.into_iter()
                    .map(|x| {
                        if n == 0 {
                            f32::INFINITY
                        } else {
                            (x / n as f64) as f32
                        }
                    })
                    .collect()
            })
            .collect();
        let mut fitted = Self {
            centres,
            radius: f32::INFINITY,
        };
        let mut d: Vec<f32> = features.iter().map(|f| fitted.distance(f)).collect();
        d.sort_by(f32::total_cmp);
        let at = ((d.len() - 1) as f64 * RADIUS_QUANTILE).round() as usize;
        fitted.radius = d[at];
        Ok(fitted)
    }

    /// Euclidean distance from `features` to the nearest centre.
    pub fn distance(&self, features: &[f32]) -> f32 {
        self.centres
            .iter()
            .map(|c| {
                c.iter()
                    .zip(features)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
            })
            .fold(f32::INFINITY, f32::min)
            .sqrt()
    }

    /// Indices of the familiar windows among windows at `distances`: those within the
    /// radius, or the nearest one when none is (never empty unless `distances` is).
    pub fn familiar(&self, distances: &[f32]) -> Vec<usize> {
        let nearest = distances.iter().copied().fold(f32::INFINITY, f32::min);
        let bound = self.radius.max(nearest);
        (0..distances.len())
            .filter(|&i| distances[i] <= bound)
            .collect()
    }

    /// Writes [`CENTROIDS_FILE`] in `dir`: `centres` `(labels, width)` and `radius` `(1)`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let rows = self.centres.len();
        let width = self.centres.first().map_or(0, Vec::len);
        let flat: Vec<f32> = self.centres.concat();
        let mut tensors = HashMap::new();
        tensors.insert(
            "centres".to_string(),
            Tensor::from_vec(flat, (rows, width), &Device::Cpu)?,
        );
        tensors.insert(
            "radius".to_string(),
            Tensor::new(&[self.radius], &Device::Cpu)?,
        );
        let path = dir.join(CENTROIDS_FILE);
        candle_core::safetensors::save(&tensors, &path)?;
        Ok(())
    }

    /// Reads [`CENTROIDS_FILE`] from `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Self>, ModelError> {
        let path = dir.join(CENTROIDS_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let t = candle_core::safetensors::load(&path, &Device::Cpu)?;
        let get = |name: &str| {
            t.get(name).ok_or_else(|| {
                ModelError::Data(format!("{} has no tensor {name:?}", path.display()))
            })
        };
        let centres: Vec<Vec<f32>> = get("centres")?.to_vec2()?;
        let radius = get("radius")?.to_vec1::<f32>()?;
        Ok(Some(Self {
            centres,
            radius: radius.first().copied().unwrap_or(f32::INFINITY),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<Vec<f32>>, Vec<usize>) {
        // Two labels around (0, 0) and (10, 0), twenty rows each, spread ±1.
        let mut f = Vec::new();
        let mut l = Vec::new();
        for i in 0..20 {
            let dy = (i as f32 - 9.5) / 9.5;
            f.push(vec![0.0, dy]);
            l.push(0);
            f.push(vec![10.0, dy]);
            l.push(1);
        }
        (f, l)
    }

    #[test]
    fn centres_are_label_means_and_the_radius_covers_most_training_rows() {
        let (f, l) = toy();
        let c = Centroids::fit(&f, &l, 2).unwrap();
        assert!(
            c.centres[0].iter().all(|x| x.abs() < 1e-6),
            "{:?}",
            c.centres
        );
        assert!((c.centres[1][0] - 10.0).abs() < 1e-6);
        let inside = f.iter().filter(|r| c.distance(r) <= c.radius).count();
        assert!(
            inside >= 38 && c.radius <= 1.0,
            "{inside} inside radius {}",
            c.radius
        );
        assert!((c.distance(&[10.0, 3.0]) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn familiar_windows_are_those_within_the_radius_or_else_the_nearest() {
        let (f, l) = toy();
        let c = Centroids::fit(&f, &l, 2).unwrap();
        let far = [c.distance(&[5.0, 40.0]), c.distance(&[5.0, 30.0])];
        assert_eq!(c.familiar(&far), vec![1], "none within: the nearest");
        let mixed = [far[0], c.distance(&[0.0, 0.2]), c.distance(&[10.0, -0.5])];
        assert_eq!(c.familiar(&mixed), vec![1, 2]);
        assert!(c.familiar(&[]).is_empty());
    }

    #[test]
    fn centroids_round_trip_through_their_file() {
        let (f, l) = toy();
        let c = Centroids::fit(&f, &l, 3).unwrap();
        assert!(
            c.centres[2].iter().all(|x| x.is_infinite()),
            "a label with no rows"
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Centroids::load(dir.path()).unwrap(), None);
        c.save(dir.path()).unwrap();
        assert_eq!(Centroids::load(dir.path()).unwrap(), Some(c));
    }
}
