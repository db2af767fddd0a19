//! The names a user sees in their ONNX file. The parser renames every node by its type and a
//! counter (`conv2d1`, `sigmoid1`); an error should name the node as Netron or the exporter
//! shows it (`/features/0/Conv`), so the file's own node list is read beside the parser.

use onnx_ir::{Message, ModelProto, Node};

/// The file's nodes in order, as (op type, name).
#[derive(Debug, Clone, Default)]
pub(crate) struct Names(Vec<(String, String)>);

impl Names {
    /// The node list of an ONNX model (empty when it does not parse).
    pub(crate) fn read(bytes: &[u8]) -> Names {
        let Ok(model) = ModelProto::parse_from_bytes(bytes) else { return Names::default() };
        Names(model.graph.node.iter().map(|n| (n.op_type.clone(), n.name.clone())).collect())
    }

    /// The file's op type and name of a parsed node: the k-th file node of its op type for
    /// the parser's `<type>k`, or the parser's own type and name when that fails.
    pub(crate) fn of(&self, node: &Node) -> (String, String) {
        let parsed = format!("{:?}", node.node_type());
        let ops: &[&str] = match parsed.as_str() {
            "Conv1d" | "Conv2d" | "Conv3d" => &["Conv"],
            "MaxPool1d" | "MaxPool2d" => &["MaxPool"],
            "AveragePool1d" | "AveragePool2d" => &["AveragePool"],
            "Linear" => &["Gemm", "MatMul"],
            other => &[other][..],
        };
        let name = node.name();
        let digits = &name[name.trim_end_matches(|c: char| c.is_ascii_digit()).len()..];
        let found = digits.parse::<usize>().ok().filter(|&k| k > 0).and_then(|k| {
            self.0.iter().filter(|(op, _)| ops.contains(&op.as_str())).nth(k - 1).filter(|(_, name)| !name.is_empty())
        });
        found.cloned().unwrap_or_else(|| (parsed, node.name().to_string()))
    }
}
