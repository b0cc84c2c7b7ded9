import type { NextConfig } from 'next'

const nextConfig: NextConfig = {
  // onepool is a native addon: Next must load it with Node's own `require` from
  // node_modules/onepool, once per process. Bundling it would copy the `.node` file to a hashed
  // path under .next/, and a second copy of the image is a second, separate pool.
  serverExternalPackages: ['onepool'],
  // This app lives inside the onepool repository, which has a lockfile of its own: pin the root
  // to the app so it resolves `onepool` from its own node_modules, as a standalone app would.
  turbopack: { root: __dirname },
  outputFileTracingRoot: __dirname,
}

export default nextConfig
