//! AdamW with torch's decoupled weight decay, per-parameter decay switch, linear warm-up and
//! decay, and global-norm gradient clipping.

use std::collections::HashMap;

use std::cell::RefCell;

use candle_core::{Result, Tensor, Var};

use crate::kernels::{sum_squares, AdamWUpdate};

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
    m: Vec<f32>,
    v: Vec<f32>,
}

/// `torch.optim.AdamW`: `θ ← θ(1 − lr·λ)`, then the bias-corrected Adam step. Parameters
/// without a gradient are left untouched (as torch does for `grad is None`). Each parameter
/// is updated in place in one fused pass (`AdamWUpdate` in the crate-private `kernels`); the moments live
/// in the optimiser as plain vectors.
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
                let n = var.elem_count();
                Slot {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                    name,
                    var,
                    decay,
                }
            })
            .collect();
        Ok(Self {
            slots,
            step: 0,
            params,
        })
    }

    /// One update from gradients keyed by parameter name.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>) -> Result<()> {
        self.step_scaled(grads, 1.0)
    }

    /// One update from gradients keyed by parameter name, each multiplied by `grad_scale`
    /// first (the factor [`clip_scale`] gives), without materialising the scaled gradients.
    pub fn step_scaled(&mut self, grads: &HashMap<String, Tensor>, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let p = self.params;
        let bc1 = 1.0 - p.beta1.powi(self.step);
        let bc2 = 1.0 - p.beta2.powi(self.step);
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.name) else {
                continue;
            };
            let g = g.contiguous()?;
            let update = AdamWUpdate {
                m: RefCell::new(&mut s.m),
                v: RefCell::new(&mut s.v),
                grad_scale: grad_scale as f32,
                betas: (p.beta1 as f32, p.beta2 as f32, p.eps as f32),
                decay: if s.decay {
                    (1.0 - p.lr * p.weight_decay) as f32
                } else {
                    1.0
                },
                step_size: (p.lr / bc1) as f32,
                bc2_sqrt: bc2.sqrt() as f32,
            };
            s.var.as_tensor().inplace_op2(&g, &update)?;
        }
        Ok(())
    }
}

/// Global L2 norm of all gradients.
pub fn global_norm(grads: &HashMap<String, Tensor>) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.values() {
        sum += sum_squares(g)?;
    }
    Ok(sum.sqrt())
}

/// The factor that brings the gradients' global norm to at most `max_norm` (torch's
/// `clip_grad_norm_`: `max_norm / (norm + 1e-6)` when that is below 1, else 1), and the norm.
pub fn clip_scale(grads: &HashMap<String, Tensor>, max_norm: f64) -> Result<(f64, f64)> {
    let norm = global_norm(grads)?;
    let coef = max_norm / (norm + 1e-6);
    Ok((coef.min(1.0), norm))
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
