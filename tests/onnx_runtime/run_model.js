// Runs an ONNX model in ONNX Runtime's CPU backend on a batch of float32 NCHW images and writes
// its output; also runs the first image alone (the batch dimension is free) and reports how far
// that row is from the batch's. Prints one JSON line.
// usage: node run_model.js MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, n, c, h, w, outputPath] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const bytes = fs.readFileSync(inputPath);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  if (data.length !== dims.reduce((a, b) => a * b)) throw new Error(`${inputPath}: wrong size`);
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  const run = async (x, shape) =>
    (await session.run({ [inputName]: new ort.Tensor('float32', x, shape) }))[outputName];
  const out = await run(data, dims);
  fs.writeFileSync(outputPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  const classes = out.dims[1];
  const single = await run(data.slice(0, c * h * w), [1, ...dims.slice(1)]);
  let diff = 0;
  for (let k = 0; k < classes; ++k) diff = Math.max(diff, Math.abs(single.data[k] - out.data[k]));
  console.log(JSON.stringify({ ort: ort.env.versions.node, input: inputName, output: outputName,
                               dims: out.dims, batch1_max_abs_diff: diff }));
}

main().catch((e) => {
  console.error(`run_model.js: ${e.message}`);
  process.exit(1);
});
