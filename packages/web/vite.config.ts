import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// the dashboard builds against core's sources, like the tests do
const core = fileURLToPath(new URL('../core/src/index.ts', import.meta.url));

/**
 * Writes a brotli and a gzip copy beside each text file of the build (app.js.br, app.js.gz),
 * which the server sends to browsers that accept them: the app's script goes over the wire
 * at a third of its size, compressed once at build time rather than on every request.
 */
function precompress(): Plugin {
  return {
    name: 'runlog-precompress',
    apply: 'build',
    writeBundle(options, bundle) {
      const dir = options.dir ?? 'dist';
      for (const fileName of Object.keys(bundle)) {
        if (!/\.(js|css|html|svg|json)$/.test(fileName)) continue;
        const path = join(dir, fileName);
        const data = readFileSync(path);
        if (data.length < 1024) continue;
        writeFileSync(
          `${path}.br`,
          brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
        writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), precompress()],
  resolve: { alias: { '@runlog/core': core } },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, reportCompressedSize: true },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:4680', ws: true } } },
});
