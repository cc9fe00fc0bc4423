// Headless Chromium's flags for the browser tests and the browser bench, in one
// place so both run the same browser: WebGPU on SwiftShader (a GPU emulated on
// the CPU; its timings say nothing about real GPUs).
export const ARGS = [
  "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader", "--disable-background-networking",
  "--disable-component-update", "--no-first-run",
];
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// The CPU path: no navigator.gpu, as on a browser without WebGPU.
export const NO_GPU = "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });";
