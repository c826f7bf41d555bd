export const ROOT: string;
export const MAIL_IMAGE: string;
export const MAIL_IMAGE_TRIXIE: string;
export const ENDPOINTS: {
  smtp: { port: number; starttls: string };
  submission: { port: number; starttls: string };
  smtps: { port: number };
  imap: { port: number; starttls: string };
  imaps: { port: number };
  pop3: { port: number; starttls: string };
  pop3s: { port: number };
  sieve: { port: number; starttls: string };
};
export const VERIFY_LABELS: { postfix: string; dovecot: string };
export type Endpoint = keyof typeof ENDPOINTS;
/** Moves the endpoints to these ports, one per endpoint in ENDPOINTS order (containers started afterwards listen there). */
export function useMailPorts(ports: number[]): void;
/** A file of docker/mailstack ("postfix/master.cf", "dovecot/dovecot.conf"), with the ports of ENDPOINTS. */
export function mailConfig(file: string): string;
/** The path of that file to mount (a written copy when the ports moved). */
export function mailConfigFile(file: string): string;
export interface ContainerOptions {
  name: string;
  role: 'postfix' | 'dovecot';
  certsDir: string;
  network?: 'host' | 'none';
  /** Value of the mailcerts.reload label; omitted means no label. */
  reload?: string;
  /** A main.cf to use instead of the stack's (Postfix only). */
  mainCf?: string;
  masterCf?: string;
  /** More labels, e.g. mailcerts.verify. */
  labels?: Record<string, string>;
  /** Container name prefix and marker label (defaults: mailcerts-test-TEST_RUN; mailcerts.test=1 and TEST_MARKER). */
  prefix?: string;
  marker?: string;
  /** The com.docker.compose.project label (default TEST_PROJECT). */
  project?: string;
  /** Another image (MAIL_IMAGE_TRIXIE), another dovecot.conf, more volumes, another command. */
  image?: string;
  dovecotConf?: string;
  volumes?: string[];
  command?: string[];
}
/** This test run (its vitest process), inherited by its workers through MAILCERTS_TEST_RUN. */
export const TEST_RUN: string;
/** The label every container of this run carries: mailcerts.test.run=TEST_RUN. */
export const TEST_MARKER: string;
export const TEST_PROJECT: string;
export function docker(...args: string[]): Promise<string>;
export function removeContainers(marker?: string): Promise<void>;
export function removeStaleTestContainers(): Promise<void>;
export function startContainer(o: ContainerOptions): Promise<string>;
export function waitForPort(port: number, timeoutMs?: number): Promise<void>;
export function startMailStack(
  certsDir: string,
  opts?: {
    prefix?: string;
    marker?: string;
    project?: string;
    labels?: Record<string, string>;
    postfixLabels?: Record<string, string>;
    mainCf?: string;
    masterCf?: string;
    dovecotConf?: string;
    image?: string;
    volumes?: string[];
  },
): Promise<{ postfix: string; dovecot: string }>;
export function servedCertificate(
  endpoint: Endpoint,
  servername?: string | null,
  opts?: { only?: 'ecdsa' | 'rsa'; tls12?: boolean },
): Promise<string>;
export function seedSelfSigned(dir: string, cn?: string): Promise<void>;
export function containerLogs(name: string): Promise<string>;
export function waitForLog(name: string, pattern: RegExp, timeoutMs?: number): Promise<void>;
