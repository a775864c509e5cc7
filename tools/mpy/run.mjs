// Run a Python script on real MicroPython (the WebAssembly port) with the project's firmware/ and host_sim/
// trees copied into its file system and on sys.path. Usage:
//   node tools/mpy/run.mjs [--heap BYTES] [--fw DIR] [--loop FUNC] SCRIPT [ARG...]
// --fw DIR puts DIR at /fw instead of firmware/: a tree of .mpy files (mpy-cross output) is loaded as bytecode,
// the way a board loads the .mpy files copied to its flash.
// The script sees its arguments in sys.argv (argv[0] is the script path). Its stdout goes to our stdout;
// an uncaught exception prints its traceback to stderr and exits 1.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

let args = process.argv.slice(2);
let heapsize = 8 * 1024 * 1024;
let loopFunc = null;
let fwDir = path.join(root, "firmware");
while (args[0] === "--heap" || args[0] === "--loop" || args[0] === "--fw") {
  if (args[0] === "--heap") heapsize = parseInt(args[1], 10);
  else if (args[0] === "--fw") fwDir = path.resolve(args[1]);
  else loopFunc = args[1];
  args = args.slice(2);
}
if (args.length < 1) {
  process.stderr.write("usage: node tools/mpy/run.mjs [--heap BYTES] [--fw DIR] [--loop FUNC] SCRIPT [ARG...]\n");
  process.exit(2);
}

const out = [];
const flush = () => {
  if (out.length) {
    process.stdout.write(out.join(""));
    out.length = 0;
  }
};
const mp = await loadMicroPython({
  heapsize,
  stdout: (line) => {
    out.push(line + "\n");
    if (out.length > 256) flush();
  },
  stderr: (line) => {
    flush();
    process.stderr.write(line + "\n");
  },
  linebuffer: true,
});

function copyTree(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
    const s = path.join(src, entry.name);
    const d = dst + "/" + entry.name;
    if (entry.isDirectory()) copyTree(s, d);
    else if (/\.(py|mpy|txt|scn)$/.test(entry.name)) {
      mp.FS.writeFile(d, fs.readFileSync(s));
    }
  }
}

// /fw holds the firmware exactly as a board's flash would; /proj holds host_sim and the test data.
copyTree(fwDir, "/fw");
try { mp.FS.mkdir("/proj"); } catch (e) { /* exists */ }
copyTree(path.join(root, "host_sim"), "/proj/host_sim");
copyTree(path.join(root, "tests"), "/proj/tests");
if (fs.existsSync(path.join(root, "bench"))) copyTree(path.join(root, "bench"), "/proj/bench");

const script = path.resolve(args[0]);
const rel = path.relative(root, script);
let target = "/proj/" + rel.split(path.sep).join("/");
if (rel.startsWith("..")) {
  target = "/proj/__main__.py";
  mp.FS.writeFile(target, fs.readFileSync(script));
}
const argv = [target, ...args.slice(1)];
mp.FS.chdir("/proj");
const boot = [
  "import sys",
  "sys.path.insert(0, '/proj')",
  "sys.path.insert(0, '/fw')",
  "sys.argv.clear()",
  ...argv.map((a) => "sys.argv.append(" + JSON.stringify(a) + ")"),
].join("\n");
mp.runPython(boot);
let code = 0;
try {
  mp.runPython("__g = {'__name__': '__main__'}");
  mp.runPython("exec(open(" + JSON.stringify(target) + ").read(), __g)");
  if (loopFunc) {
    // --loop FUNC: call FUNC() from the top level until it returns None. Between calls the collector runs
    // (the WebAssembly port can only free garbage when no Python frame is live), so the sampled
    // gc.mem_alloc() is the live heap; its peak minus the first sample is printed at the end.
    mp.runPython("import gc\ngc.collect()\n__base = gc.mem_alloc()\n__peak = 0");
    for (;;) {
      mp.runPython("__r = __g[" + JSON.stringify(loopFunc) + "]()");
      mp.runPython("gc.collect()\n__peak = max(__peak, gc.mem_alloc() - __base)");
      mp.runPython("__done = 1 if __r is None else 0");
      if (mp.globals.get("__done") === 1) break;
    }
    flush();
    mp.runPython("print('peak_live_heap_bytes', __peak)");
  }
} catch (e) {
  flush();
  process.stderr.write(String(e && e.message ? e.message : e) + "\n");
  code = 1;
}
flush();
process.exitCode = code;
