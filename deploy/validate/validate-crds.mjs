// Validate custom resources (a JSON array on stdin) against their CRD schemas, using the
// @kubernetes-models packages. Prints one line per resource; exits 1 if any is invalid or of a
// kind no package here knows.
import { readFileSync } from "node:fs";

const PACKAGES = {
  "postgresql.cnpg.io": "@kubernetes-models/cloudnative-pg",
  "external-secrets.io": "@kubernetes-models/external-secrets",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

const docs = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const doc of docs) {
  const [group, version] = doc.apiVersion.split("/");
  const name = `${doc.kind}/${doc.metadata?.name}`;
  const pkg = PACKAGES[group];
  if (!pkg) {
    console.log(`UNKNOWN ${doc.apiVersion} ${name}`);
    failed += 1;
    continue;
  }
  try {
    const module = await import(`${pkg}/${group}/${version}/${doc.kind}`);
    new module[doc.kind](doc).validate();
    console.log(`ok ${doc.apiVersion} ${name}`);
  } catch (error) {
    console.log(`INVALID ${doc.apiVersion} ${name}: ${error.message ?? error}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
