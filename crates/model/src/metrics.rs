//! Evaluation: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix, and the
//! expected calibration error of the winning label's score.

use serde::{Deserialize, Serialize};

use crate::classifier::{argmax, Classifier};
use crate::ModelError;

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class.
    pub label: String,
    /// TP / (TP + FP); 0 when nothing was predicted as this class.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class has no examples.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Number of true examples of the class.
    pub support: usize,
}

/// Metrics of a classifier on a labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Labels, in the order of `per_class` and the confusion matrix.
    pub labels: Vec<String>,
    /// Number of examples.
    pub examples: usize,
    /// Mean cross-entropy of the true labels (from the predicted probabilities).
    pub loss: f64,
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Mean F1 over the classes that occur in the truth or the predictions (as scikit-learn).
    pub macro_f1: f64,
    /// Per-class metrics, in label order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Expected calibration error of the winning label's score ([`ECE_BINS`] equal-width
    /// bins): how far "score 0.8" is from "right 80% of the time", weighted by bin size.
    #[serde(default)]
    pub ece: f64,
}

/// Bins of [`expected_calibration_error`] (the common choice, as in Guo et al. 2017).
pub const ECE_BINS: usize = 15;

/// Expected calibration error: the examples are binned by `confidence` into `bins` equal-width
/// bins of (0, 1]; the result is the mean over examples of |accuracy − mean confidence| of
/// their bin.
pub fn expected_calibration_error(confidence: &[f32], correct: &[bool], bins: usize) -> f64 {
    let bins = bins.max(1);
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0f64; bins];
    let mut right = vec![0usize; bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let c = (c as f64).clamp(0.0, 1.0);
        let b = ((c * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        count[b] += 1;
        conf_sum[b] += c;
        right[b] += ok as usize;
    }
    let n = confidence.len().max(1) as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (right[b] as f64 - conf_sum[b]).abs() / n)
        .sum()
}

/// Metrics from true and predicted label ids, the probabilities of the true labels and those
/// of the predicted ones (the scores a user sees).
pub fn report(
    labels: &[String],
    truth: &[usize],
    pred: &[usize],
    p_true: &[f32],
    p_pred: &[f32],
) -> EvalReport {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&t, &p) in truth.iter().zip(pred) {
        confusion[t][p] += 1;
    }
    let mut per_class = Vec::with_capacity(n);
    let (mut f1_sum, mut f1_count) = (0.0, 0usize);
    for (c, label) in labels.iter().enumerate() {
        let tp = confusion[c][c] as f64;
        let support: usize = confusion[c].iter().sum();
        let predicted: usize = confusion.iter().map(|row| row[c]).sum();
        let precision = if predicted > 0 {
            tp / predicted as f64
        } else {
            0.0
        };
        let recall = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if support > 0 || predicted > 0 {
            f1_sum += f1;
            f1_count += 1;
        }
        per_class.push(ClassMetrics {
            label: label.clone(),
            precision,
            recall,
            f1,
            support,
        });
    }
    let examples = truth.len();
    let right: Vec<bool> = truth.iter().zip(pred).map(|(t, p)| t == p).collect();
    let correct = right.iter().filter(|&&r| r).count();
    let loss = p_true
        .iter()
        .map(|&p| -(p.max(1e-12) as f64).ln())
        .sum::<f64>()
        / examples.max(1) as f64;
    EvalReport {
        labels: labels.to_vec(),
        examples,
        loss,
        accuracy: correct as f64 / examples.max(1) as f64,
        macro_f1: f1_sum / f1_count.max(1) as f64,
        per_class,
        confusion,
        ece: expected_calibration_error(p_pred, &right, ECE_BINS),
    }
}

/// Evaluates `classifier` on `(text, label)` pairs with its own inference settings.
/// Every label must be one of the classifier's.
pub fn evaluate(
    classifier: &Classifier,
    data: &[(String, String)],
) -> Result<EvalReport, ModelError> {
    let labels = classifier.labels();
    let truth =
        data.iter()
            .map(|(_, l)| {
                labels.iter().position(|x| x == l).ok_or_else(|| {
                    ModelError::Data(format!("label {l:?} is not one of the model's"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<&str> = data.iter().map(|(t, _)| t.as_str()).collect();
    let probs = classifier.probabilities(&texts)?;
    let pred: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let p_true: Vec<f32> = probs.iter().zip(&truth).map(|(p, &t)| p[t]).collect();
    let p_pred: Vec<f32> = probs.iter().zip(&pred).map(|(p, &i)| p[i]).collect();
    Ok(report(labels, &truth, &pred, &p_true, &p_pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_hand_computed_values() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let truth = [0, 0, 1, 1, 2];
        let pred = [0, 1, 1, 1, 1];
        let r = report(
            &labels,
            &truth,
            &pred,
            &[0.5; 5],
            &[0.9, 0.6, 0.6, 0.6, 0.6],
        );
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![0, 1, 0]]
        );
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        // a: P 1, R .5, F1 2/3; b: P .5, R 1, F1 2/3; c: 0.
        assert!((r.per_class[0].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_f1 - 4.0 / 9.0).abs() < 1e-12);
        assert!((r.loss - 2f64.ln()).abs() < 1e-6);
        // Bin (0.867, 0.933]: 1 right at 0.9 -> 0.1; bin (0.533, 0.6]: 2 of 4 right at 0.6 -> 0.4.
        assert!((r.ece - (0.1 + 4.0 * 0.1) / 5.0).abs() < 1e-6, "{}", r.ece);
    }

    #[test]
    fn calibrated_scores_have_no_calibration_error() {
        // Scores of 0.75 right 3 times in 4: calibrated; always right at 0.75: off by 0.25.
        let conf = [0.75f32; 4];
        assert!(expected_calibration_error(&conf, &[true, true, true, false], 15) < 1e-9);
        let e = expected_calibration_error(&conf, &[true; 4], 15);
        assert!((e - 0.25).abs() < 1e-6, "{e}");
    }
}
