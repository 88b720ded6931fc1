import type { DlpFinding, InboundScan } from "./dlp-types.ts";
// TEMP local shim while egress-dlp's inbound detector lands: NOT TO BE COMMITTED
export function createInjectionScan(): InboundScan {
  let all = "";
  return {
    write(text: string): DlpFinding[] {
      all += text;
      return [];
    },
    end(): DlpFinding[] {
      return /ignore (all )?previous instructions/i.test(all)
        ? [
            {
              detector: "naive_injection_detection",
              rule: "x",
              surface: "response",
              severity: "warn",
            },
          ]
        : [];
    },
  };
}
