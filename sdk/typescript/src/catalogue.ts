// Generated from bioverify.errors.CATALOGUE by `python -m bioverify.errors_sdk --write`; do not edit by hand.

/** Fatal codes end the session; diagnostic codes are recorded once and never end it. */
export type Kind = "fatal" | "diagnostic";
/** Whether trying again can change the outcome. */
export type RetryClass = "permanent" | "transient";

/** One row of the service's error catalogue. */
export interface ErrorCode {
  readonly code: number;
  readonly name: string;
  readonly kind: Kind;
  readonly retry: RetryClass;
  readonly httpStatus: number;
  readonly message: string;
  readonly remedy: string;
}

/** Every code, in catalogue order. */
export const CATALOGUE: readonly ErrorCode[] = Object.freeze([
  Object.freeze({
    code: 1,
    name: "SPOOF",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 422,
    message: "Spoofing attempt detected",
    remedy: "The capture did not pass the liveness check. The outcome stands; a genuine user should start a new session and follow the on-screen movements with their own face.",
  }),
  Object.freeze({
    code: -5,
    name: "DESKTOP",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 403,
    message: "Desktop mode restricted",
    remedy: "This session does not allow desktop browsers. Open the link on a phone or tablet.",
  }),
  Object.freeze({
    code: -7,
    name: "CAMERA_FAIL",
    kind: "fatal",
    retry: "transient",
    httpStatus: 200,
    message: "Camera failure detected",
    remedy: "The camera could not be opened or read. Allow camera access, close other apps using the camera, then start a new session.",
  }),
  Object.freeze({
    code: -8,
    name: "SESSION_EXPIRED",
    kind: "fatal",
    retry: "transient",
    httpStatus: 410,
    message: "Session expired",
    remedy: "The session passed its time limit. Start a new session.",
  }),
  Object.freeze({
    code: -9,
    name: "FACE_NOT_MATCH",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 422,
    message: "Face not matching",
    remedy: "The face does not match the enrolled customer (or no enrolled customer, for sign-in). The outcome stands for this session.",
  }),
  Object.freeze({
    code: -10,
    name: "LOW_LIGHT",
    kind: "fatal",
    retry: "transient",
    httpStatus: 422,
    message: "Low ambient light",
    remedy: "The picture is too dark. Move to a brighter place, face the light, and start a new session.",
  }),
  Object.freeze({
    code: -11,
    name: "MULTIPLE_FACES",
    kind: "fatal",
    retry: "transient",
    httpStatus: 422,
    message: "Multiple faces detected",
    remedy: "More than one face was in the picture. Make sure only you are in view, then start a new session.",
  }),
  Object.freeze({
    code: -14,
    name: "UNAUTHORIZED_CALLBACK",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 401,
    message: "Unauthorized callback",
    remedy: "The capture link's secret was wrong; the session was ended for safety. Ask the service for a new session.",
  }),
  Object.freeze({
    code: -15,
    name: "TOKEN_ALREADY_USED",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 409,
    message: "Token already used",
    remedy: "This request or capture link was already used (possible replay). Start a new session.",
  }),
  Object.freeze({
    code: -16,
    name: "DEVICE_MISMATCH",
    kind: "fatal",
    retry: "permanent",
    httpStatus: 403,
    message: "Device mismatch",
    remedy: "The device differs from the one this session (or the enrolment) is bound to. Use the original device.",
  }),
  Object.freeze({
    code: -20,
    name: "MODEL_LOAD_FAILED",
    kind: "diagnostic",
    retry: "transient",
    httpStatus: 200,
    message: "Face scanning models failed to load",
    remedy: "Reload the page; if it persists the operator should check the service's readiness (/readyz).",
  }),
  Object.freeze({
    code: -22,
    name: "FACE_SCAN_ERROR",
    kind: "diagnostic",
    retry: "transient",
    httpStatus: 200,
    message: "No usable face found",
    remedy: "Center your face in the frame, hold still, and try again within this session.",
  }),
  Object.freeze({
    code: -23,
    name: "DOCUMENT_SCAN_ERROR",
    kind: "diagnostic",
    retry: "transient",
    httpStatus: 400,
    message: "Document scan failed",
    remedy: "The document could not be read, or its data failed its checks. Photograph it again: flat, inside the outline, without glare.",
  }),
  Object.freeze({
    code: -24,
    name: "SESSION_LOAD_FAILED",
    kind: "diagnostic",
    retry: "transient",
    httpStatus: 200,
    message: "Session failed to load",
    remedy: "The page could not fetch the session at first; it recovered. Check the network if this repeats.",
  }),
]);

/** Codes accepted on input as another code's alias; never emitted. */
export const LEGACY_ALIASES: Readonly<Record<string, number>> = Object.freeze({ "-13": -8 });

/** Code numbers by name. */
export const CODES = Object.freeze({ SPOOF: 1, DESKTOP: -5, CAMERA_FAIL: -7, SESSION_EXPIRED: -8, FACE_NOT_MATCH: -9, LOW_LIGHT: -10, MULTIPLE_FACES: -11, UNAUTHORIZED_CALLBACK: -14, TOKEN_ALREADY_USED: -15, DEVICE_MISMATCH: -16, MODEL_LOAD_FAILED: -20, FACE_SCAN_ERROR: -22, DOCUMENT_SCAN_ERROR: -23, SESSION_LOAD_FAILED: -24 } as const);
