//! A sequence classifier whose parameters are candle `Var`s, for training.

use std::collections::HashMap;
use std::ops::Range;

use candle_core::{Tensor, Var};

use crate::config::ModelConfig;
use crate::encoder::SequenceClassifier;
use crate::nn::{Batch, Ctx, Weights};
use crate::optim::{AdamW, AdamWParams};
use crate::ModelError;

/// A classifier with trainable parameters in Hugging Face naming.
pub struct Trainable {
    /// The config the model was built from (dropouts possibly overridden).
    pub config: ModelConfig,
    /// Labels in id order.
    pub labels: Vec<String>,
    vars: Vec<(String, Var)>,
    model: SequenceClassifier,
    label_smoothing: f64,
}

impl Trainable {
    /// Wraps `weights` (a complete classifier) in `Var`s.
    pub fn new(
        config: ModelConfig,
        labels: Vec<String>,
        weights: &Weights,
    ) -> Result<Self, ModelError> {
        let mut vars = Vec::with_capacity(weights.len());
        let mut live = Weights::new();
        for (name, t) in weights {
            let var = Var::from_tensor(t)?;
            live.insert(name.clone(), var.as_tensor().clone());
            vars.push((name.clone(), var));
        }
        let model = SequenceClassifier::load(&live, &config.encoder, labels.len())?;
        Ok(Self {
            config,
            labels,
            vars,
            model,
            label_smoothing: 0.0,
        })
    }

    /// Parameter names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(n, _)| n.as_str())
    }

    /// Logits `(B, num_labels)`.
    pub fn forward(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor, ModelError> {
        Ok(self.model.forward(batch, ctx)?)
    }

    /// Sets the label smoothing `eps` of [`Self::loss_and_grads`] (0, the default: plain
    /// cross-entropy), as PyTorch's `CrossEntropyLoss(label_smoothing=eps)` and the Trainer's
    /// `label_smoothing_factor`: the target is `1 - eps` on the label plus `eps / K` on each
    /// of the `K` labels.
    pub fn set_label_smoothing(&mut self, eps: f64) {
        self.label_smoothing = eps;
    }

    /// Mean cross-entropy of `batch` against `targets` (label-smoothed when set) and the
    /// gradient of every parameter the loss depends on, keyed by name; `scale` multiplies the
    /// loss before backward.
    pub fn loss_and_grads(
        &self,
        batch: &Batch,
        targets: &[u32],
        ctx: &Ctx,
        scale: f64,
    ) -> Result<(f32, HashMap<String, Tensor>), ModelError> {
        let logits = self.forward(batch, ctx)?;
        self.backward(&logits, targets, scale)
    }

    /// [`Self::loss_and_grads`] for bags of windows (multiple-instance learning): the rows of
    /// `batch` are windows, `bags[i]` the rows of example `i`, and an example's logits are,
    /// per label, the largest log-probability any of its windows gives the label
    /// ([`crate::Pool::Max`], the pooling inference uses). The gradient of each label reaches
    /// the window that gave it: the window that decides a call learns to say its label, and a
    /// window of generic talk that speaks for a wrong label learns to spread its probability.
    /// Bags of one window train as [`Self::loss_and_grads`] (the log-softmax of a
    /// log-softmax is itself).
    pub fn bag_loss_and_grads(
        &self,
        batch: &Batch,
        bags: &[Range<usize>],
        targets: &[u32],
        ctx: &Ctx,
        scale: f64,
    ) -> Result<(f32, HashMap<String, Tensor>), ModelError> {
        let logits = self.forward(batch, ctx)?;
        let logits = pool_max_log_prob(&logits, bags)?;
        self.backward(&logits, targets, scale)
    }

    fn backward(
        &self,
        logits: &Tensor,
        targets: &[u32],
        scale: f64,
    ) -> Result<(f32, HashMap<String, Tensor>), ModelError> {
        let t = Tensor::new(targets, logits.device())?;
        // candle's cross_entropy is log_softmax + nll; the smoothed target adds eps times the
        // mean of -log p over every label (exactly 0 when eps is 0).
        let eps = self.label_smoothing;
        let log_p = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
        let nll = candle_nn::loss::nll(&log_p, &t)?;
        let uniform = log_p.mean_all()?.neg()?;
        let loss = ((nll * (1.0 - eps))? + (uniform * eps)?)?;
        let value = loss.to_scalar::<f32>()?;
        let grads = (loss * scale)?.backward()?;
        let mut out = HashMap::with_capacity(self.vars.len());
        for (name, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                out.insert(name.clone(), g.clone());
            }
        }
        Ok((value, out))
    }

    /// An AdamW optimiser over all parameters; `decay(name)` says which get weight decay.
    pub fn optimizer(
        &self,
        params: AdamWParams,
        decay: impl Fn(&str) -> bool,
    ) -> Result<AdamW, ModelError> {
        let vars = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), decay(n)))
            .collect();
        Ok(AdamW::new(vars, params)?)
    }

    /// A detached snapshot of the current parameters (shares storage until the next step).
    pub fn weights(&self) -> Result<Weights, ModelError> {
        let mut w = Weights::new();
        for (name, var) in &self.vars {
            w.insert(name.clone(), var.as_tensor().detach().copy()?);
        }
        Ok(w)
    }
}

/// Per bag and column, the largest log-probability over the bag's rows: `(rows, C)` logits →
/// `(bags, C)`. When every bag is one row in order, the logits are returned as they are (the
/// loss's log-softmax gives the same result).
pub fn pool_max_log_prob(logits: &Tensor, bags: &[Range<usize>]) -> Result<Tensor, ModelError> {
    if bags
        .iter()
        .enumerate()
        .all(|(i, r)| r.start == i && r.len() == 1)
    {
        return Ok(logits.clone());
    }
    let log_p = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
    let pooled = bags
        .iter()
        .map(|r| log_p.narrow(0, r.start, r.len())?.max_keepdim(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(&pooled, 0)?)
}
