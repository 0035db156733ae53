import { defineConfig } from 'vite';

// Served by the API at /training (shared/http/dashboard_routes.py); `npm run build` writes dist/.
export default defineConfig({
  base: '/training/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        manualChunks: { firebase: ['firebase/app', 'firebase/firestore'], charts: ['chart.js'] },
      },
    },
  },
  test: { environment: 'node', include: ['src/**/*.test.js'] },
});
