//! Evaluation: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix.

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
}

/// Metrics from true and predicted label ids and the probabilities of the true labels.
pub fn report(labels: &[String], truth: &[usize], pred: &[usize], p_true: &[f32]) -> EvalReport {
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
    let correct = truth.iter().zip(pred).filter(|(t, p)| t == p).count();
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
    Ok(report(labels, &truth, &pred, &p_true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_hand_computed_values() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let truth = [0, 0, 1, 1, 2];
        let pred = [0, 1, 1, 1, 1];
        let r = report(&labels, &truth, &pred, &[0.5; 5]);
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
    }
}
