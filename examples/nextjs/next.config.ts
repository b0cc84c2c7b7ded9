import type { NextConfig } from 'next'

const nextConfig: NextConfig = {
  // onepool is a native addon: Next must load it with Node's own `require` from
  // node_modules/onepool, once per process. Bundling it would copy the `.node` file to a hashed
  // path under .next/, and a second copy of the image is a second, separate pool.
  serverExternalPackages: ['onepool'],
}

export default nextConfig
