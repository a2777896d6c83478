//! AdamW with torch's decoupled weight decay, per-parameter decay switch, linear warm-up and
//! decay, and global-norm gradient clipping.

use std::collections::HashMap;

use candle_core::{Result, Tensor, Var};

/// AdamW hyper-parameters (torch defaults except `lr`).
#[derive(Debug, Clone, Copy)]
pub struct AdamWParams {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    decay: bool,
    m: Tensor,
    v: Tensor,
}

/// `torch.optim.AdamW`: `θ ← θ(1 − lr·λ)`, then the bias-corrected Adam step. Parameters
/// without a gradient are left untouched (as torch does for `grad is None`).
pub struct AdamW {
    slots: Vec<Slot>,
    step: i32,
    /// Current hyper-parameters; `lr` may be changed between steps by a schedule.
    pub params: AdamWParams,
}

impl AdamW {
    /// `vars` are `(name, var, apply_weight_decay)`.
    pub fn new(vars: Vec<(String, Var, bool)>, params: AdamWParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var, decay)| {
                Ok(Slot {
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    name,
                    var,
                    decay,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            step: 0,
            params,
        })
    }

    /// One update from gradients keyed by parameter name.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>) -> Result<()> {
        self.step += 1;
        let p = self.params;
        let bc1 = 1.0 - p.beta1.powi(self.step);
        let bc2 = 1.0 - p.beta2.powi(self.step);
        let step_size = p.lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.name) else {
                continue;
            };
            let theta = s.var.as_tensor();
            let theta = if s.decay && p.weight_decay != 0.0 {
                (theta * (1.0 - p.lr * p.weight_decay))?
            } else {
                theta.clone()
            };
            s.m = ((&s.m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            s.v = ((&s.v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let denom = ((s.v.sqrt()? / bc2_sqrt)? + p.eps)?;
            let update = (s.m.div(&denom)? * step_size)?;
            s.var.set(&(theta - update)?.detach())?;
        }
        Ok(())
    }
}

/// Global L2 norm of all gradients.
pub fn global_norm(grads: &HashMap<String, Tensor>) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.values() {
        sum += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// Scales gradients so their global norm is at most `max_norm` (torch's
/// `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut HashMap<String, Tensor>, max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.values_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm)
}

/// Linear warm-up from 0 to `base` over `warmup` steps, then linear decay to 0 at `total`
/// (HF `get_linear_schedule_with_warmup`); `step` counts from 0.
pub fn linear_schedule(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let rest = total.saturating_sub(step) as f64 / total.saturating_sub(warmup).max(1) as f64;
    base * rest.max(0.0)
}

/// Whether a parameter gets weight decay: not biases, not layer-norm weights.
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm"))
}
