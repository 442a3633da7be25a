/**
 * Certificates of the tests' own, made with the `openssl` CLI into a temporary directory: a self-signed CA, a
 * server certificate it signed for `localhost` and 127.0.0.1, and a client certificate it signed (for mTLS). Nothing
 * is installed anywhere: the tests pass the CA to the client as an option, never through NODE_EXTRA_CA_CERTS.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface TestCertificates {
  readonly dir: string
  /** Paths of the PEM files. */
  readonly files: {
    readonly ca: string
    readonly serverCert: string
    readonly serverKey: string
    readonly clientCert: string
    readonly clientKey: string
  }
  /** The PEM texts, as a client's `tls` option takes them. */
  readonly ca: string
  readonly clientCert: string
  readonly clientKey: string
  readonly remove: () => void
}

const openssl = (dir: string, args: ReadonlyArray<string>) => {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] })
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? ""
    throw new Error(`openssl ${args[0]} failed (is the openssl CLI installed?): ${stderr || String(error)}`)
  }
}

/** P-256 keys: quick to make, and every TLS stack takes them. */
const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** Signs `name`.csr with the CA into `name`.crt, with the given extensions. */
const sign = (dir: string, name: string, extensions: string) => {
  writeFileSync(join(dir, `${name}.ext`), extensions)
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-sha256",
    "-extfile",
    `${name}.ext`
  ])
}

export const makeCertificates = (): TestCertificates => {
  const dir = mkdtempSync(join(tmpdir(), "rc-tls-"))
  try {
    openssl(dir, [
      "req",
      "-x509",
      ...newKey,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=rc test CA"
    ])
    openssl(dir, ["req", "-new", ...newKey, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"])
    sign(dir, "server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl(dir, [
      "req",
      "-new",
      ...newKey,
      "-keyout",
      "client.key",
      "-out",
      "client.csr",
      "-subj",
      "/CN=rc test client"
    ])
    sign(dir, "client", "extendedKeyUsage=clientAuth\n")
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const files = {
    ca: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key")
  }
  return {
    dir,
    files,
    ca: readFileSync(files.ca, "utf8"),
    clientCert: readFileSync(files.clientCert, "utf8"),
    clientKey: readFileSync(files.clientKey, "utf8"),
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}
