// The single page `osprey serve` returns at /: pick or drop an image, see the top-3.
#pragma once

namespace osprey::tools {

inline const char* kServePage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Osprey</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
#drop { border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; cursor: pointer; }
#drop.over { background: #eef; }
#preview { max-width: 8rem; image-rendering: pixelated; margin-top: 1rem; }
.row { display: flex; align-items: center; margin: .4rem 0; }
.name { width: 10rem; }
.bar { flex: 1; background: #eee; height: 1.2rem; border-radius: 4px; margin: 0 .5rem; }
.fill { background: #3a7; height: 100%; border-radius: 4px; }
.uncertain .fill { background: #d93; }
#status { color: #666; margin-top: 1rem; }
</style></head><body>
<h1>Osprey</h1>
<p id="model">loading model...</p>
<div id="drop">Drop an image here, or <label><u>choose a file</u>
<input id="file" type="file" accept="image/*" hidden></label></div>
<img id="preview" alt="">
<div id="result"></div>
<p id="status"></p>
<script>
const $ = (id) => document.getElementById(id);
fetch('/api/model').then(r => r.json()).then(m => {
  $('model').textContent = `${m.name}, ${m.classes} classes, input ${m.input.join('x')}, ` +
    `checkpoint ${m.checkpoint}`;
});
async function classify(file) {
  $('preview').src = URL.createObjectURL(file);
  $('status').textContent = 'classifying...';
  const t0 = performance.now();
  const r = await fetch('/api/predict?k=3', { method: 'POST', body: file });
  const j = await r.json();
  if (!r.ok) { $('status').textContent = 'error: ' + j.error; $('result').innerHTML = ''; return; }
  const ms = (performance.now() - t0).toFixed(0);
  $('result').innerHTML = j.top.map(p =>
    `<div class="row ${j.uncertain ? 'uncertain' : ''}"><span class="name">${p.class}</span>` +
    `<span class="bar"><span class="fill" style="width:${(100 * p.probability).toFixed(1)}%;display:block"></span></span>` +
    `<span class="prob">${(100 * p.probability).toFixed(1)}%</span></div>`).join('');
  $('status').textContent = (j.uncertain ? 'uncertain answer, ' : '') +
    `${ms} ms (model ${j.model_ms.toFixed(1)} ms), ${j.model}`;
}
$('file').addEventListener('change', e => e.target.files[0] && classify(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => {
  e.preventDefault(); drop.classList.remove('over');
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
});
</script></body></html>
)HTML";

}  // namespace osprey::tools
