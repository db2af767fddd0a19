//! Whether layers can run one after another: every layer on its own ([`LayerKind::check`])
//! and each pair (widths that meet, two-layer skips opened and closed with the same shape).

use crate::carry::Carry;
use crate::layer::{Arch, LayerKind};

/// Why `next` cannot follow `prev` in a chain, if it cannot: its input width is not `prev`'s
/// output width, or a two-layer skip is opened and not closed (or closed and not opened)
/// with the carried input's shape.
pub fn chain_check(prev: &LayerKind, next: &LayerKind) -> Result<(), String> {
    if prev.output_width() != next.input_width() {
        return Err(format!(
            "takes {} values per example, the layer before gives {}",
            next.input_width(),
            prev.output_width()
        ));
    }
    let opened = match (prev.carry(), prev.conv_geom()) {
        (Carry::Open, Some(g)) => Some(Carry::Close { c: g.c_in, side: g.side_in }),
        _ => None,
    };
    match (opened, next.carry()) {
        (None, Carry::Close { .. }) => Err("closes a two-layer skip the layer before does not open".into()),
        (Some(want), got) if want != got => {
            Err(format!("must close the two-layer skip the layer before opens ({want:?})"))
        }
        _ => Ok(()),
    }
}

impl Arch {
    /// Why the layers cannot run as a chain, if they cannot ([`LayerKind::check`] of each,
    /// [`chain_check`] of each pair), naming the layer.
    pub fn check(&self) -> Result<(), String> {
        for (k, l) in self.layers.iter().enumerate() {
            l.kind.check().map_err(|why| format!("layer {}: {why}", l.name))?;
            if k > 0 {
                chain_check(&self.layers[k - 1].kind, &l.kind).map_err(|why| format!("layer {}: {why}", l.name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carry::Shortcut;
    use crate::layer::{LayerSpec, Pool};

    /// A basic block's two layers: the first passes its input on, the second takes it in and
    /// adds it through the shortcut; what cannot run is refused.
    #[test]
    fn two_layer_skips() {
        let conv =
            |c_in, c_out, side_in, stride, carry| LayerKind::block(c_in, c_out, side_in, stride, Pool::None, carry);
        let open = conv(8, 16, 28, 2, Carry::Open);
        assert_eq!((open.own_input_width(), open.input_width()), (8 * 784, 8 * 784));
        assert_eq!((open.own_output_width(), open.output_width()), (16 * 196, 16 * 196 + 8 * 784));
        let close = conv(16, 16, 14, 1, Carry::Close { c: 8, side: 28 });
        assert_eq!((close.own_input_width(), close.input_width()), (16 * 196, 16 * 196 + 8 * 784));
        assert_eq!(close.output_width(), 16 * 196);
        assert_eq!(close.shortcut(), Some(Shortcut { c: 8, side: 28, c_out: 16, o: 14 }));
        assert!(open.check().is_ok() && close.check().is_ok() && open.shortcut().is_none());
        assert!(conv(16, 16, 14, 1, Carry::Close { c: 32, side: 28 }).check().unwrap_err().contains("carried"));
        let LayerKind::Conv { c_in, c_out, side_in, same, kernel, stride, residual, .. } = open else { unreachable!() };
        let pooled = LayerKind::Conv {
            c_in,
            c_out,
            side_in,
            same,
            kernel,
            stride,
            residual,
            pool: Pool::Max2,
            carry: Carry::Open,
        };
        assert!(pooled.check().is_err());
        let s = serde_json::to_string(&close).unwrap();
        assert!(s.ends_with(r#""carry":{"close":{"c":8,"side":28}}}"#), "{s}");
        assert_eq!(serde_json::from_str::<LayerKind>(&s).unwrap(), close);
        assert!(serde_json::to_string(&open).unwrap().ends_with(r#""carry":"open"}"#));
        let spec = |name: &str, kind: &LayerKind| LayerSpec { name: name.into(), kind: kind.clone() };
        assert!(Arch { layers: vec![spec("a", &open), spec("b", &close)] }.check().is_ok());
        let e = Arch { layers: vec![spec("a", &close), spec("b", &close)] }.check().unwrap_err();
        assert!(e.starts_with("layer b:"), "{e}");
        let plain = conv(16, 16, 14, 1, Carry::None);
        assert!(chain_check(&open, &plain).is_err() && chain_check(&plain, &close).is_err());
        assert!(chain_check(&plain, &plain).is_ok());
    }
}
