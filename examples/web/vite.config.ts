import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Herald serves the built app at /app on its api port, next to /graphql: same origin, so the app
// needs no API address. `npm run dev` gets the same layout through the proxy below.
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false },
  server: {
    proxy: {
      "/graphql": { target: "http://localhost:4000", ws: true },
    },
  },
});
