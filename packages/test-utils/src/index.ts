export {
  isTestUtilsError,
  TestUtilsError,
  type TestUtilsErrorCode,
  type TestUtilsErrorOptions,
} from "./errors.ts";
export { createTempHome, type TempHome, withTempHome } from "./home.ts";
export { type CapturedIo, captureIo } from "./io.ts";
export { writeManifestTree } from "./manifest-tree.ts";
export {
  createFakeUpstream,
  type FakeApi,
  type FakeExtraEndpoint,
  type FakeFault,
  type FakeReply,
  type FakeUpstream,
  type FakeUpstreamOptions,
  type RecordedRequest,
} from "./upstream.ts";
export {
  anthropicFrames,
  anthropicJson,
  type FakeToolCall,
  type FakeUsage,
  openaiChatFrames,
  openaiChatJson,
  openaiResponsesFrames,
  openaiResponsesJson,
  type ResolvedReply,
  sseFrame,
} from "./wire.ts";
