import type { ChildProcess } from "node:child_process";

/** Collect a child process's stdout and stderr as text while it runs (read them after it has closed). */
export function captureOutput(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  return { stdout: () => stdout, stderr: () => stderr };
}
