import onnxProto from "onnx-proto";
import { ChurnopsError } from "../errors.js";

const { onnx } = onnxProto;

/** What an ONNX graph says about itself that bundle.json must agree with (docs/bundle.md). */
export interface GraphFacts {
  inputs: Map<string, ElementType>;
  outputs: Map<string, ElementType>;
  /** Per graph input, the category strings of the encoders that read it directly (empty when none does). */
  categories: Map<string, Set<string>>;
}

export type ElementType = "float" | "double" | "string" | "other";

// TensorProto.DataType: float and string for inputs; outputs are float or (heads with contributions) double.
const FLOAT = 1;
const STRING = 8;
const DOUBLE = 11;
/** ai.onnx.ml encoders that list the strings they know: OneHotEncoder, CategoryMapper, LabelEncoder. */
const CATEGORY_ATTRIBUTES = new Set(["cats_strings", "classes_strings", "keys_strings"]);

function elementType(value: { type?: { tensorType?: { elemType?: number | null } | null } | null }): ElementType {
  const t = value.type?.tensorType?.elemType;
  return t === FLOAT ? "float" : t === STRING ? "string" : t === DOUBLE ? "double" : "other";
}

/** Decode the graph's protobuf; a file that is not an ONNX model is an invalid bundle, not an internal error. */
export function graphFacts(bytes: Uint8Array, where: string): GraphFacts {
  let model: ReturnType<typeof onnx.ModelProto.decode>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ChurnopsError("bundle_invalid", `bundle ${where}: the graph file is not an ONNX model: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (graph === null || graph === undefined) throw new ChurnopsError("bundle_invalid", `bundle ${where}: the ONNX file has no graph`);
  const inputs = new Map((graph.input ?? []).map((i) => [i.name ?? "", elementType(i)] as const));
  const outputs = new Map((graph.output ?? []).map((o) => [o.name ?? "", elementType(o)] as const));
  const categories = new Map<string, Set<string>>();
  const decoder = new TextDecoder();
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) {
      if (!inputs.has(input)) continue;
      for (const attribute of node.attribute ?? []) {
        if (!CATEGORY_ATTRIBUTES.has(attribute.name ?? "")) continue;
        const known = categories.get(input) ?? new Set<string>();
        for (const s of attribute.strings ?? []) known.add(decoder.decode(s));
        categories.set(input, known);
      }
    }
  }
  return { inputs, outputs, categories };
}
