// Browser integrity indicators sent with every capture and event report, in the
// spirit of PrivateID's "indicators": facts the server and the integrator can weigh
// (automation, headless browsers, virtual cameras). They are hints, never proof:
// the server's own checks decide.

const VIRTUAL_CAMERA = /virtual|obs[- ]?(studio|cam)|manycam|snap camera|xsplit|droidcam|e2esoft|splitcam|camtwist|epoccam|iriun|fake|\.y4m|\.mjpe?g/i;
const HEADLESS_UA = /HeadlessChrome|PhantomJS|Electron|puppeteer|playwright/i;
const MOBILE_UA = /Mobi|Android|iPhone|iPad|iPod|Windows Phone|Tablet/i;

/** True on a desktop browser (iPadOS "desktop mode" counts as mobile). */
export function isDesktop() {
  const iPadDesktopMode = /Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1;
  return !MOBILE_UA.test(navigator.userAgent) && !iPadDesktopMode;
}

/** What the page tells the server about the device (no identifiers). */
export function deviceInfo() {
  return {
    deviceType: isDesktop() ? 'desktop' : 'mobile',
    platform: navigator.userAgentData?.platform || navigator.platform || '',
    screen: `${screen.width}x${screen.height}`,
    pixelRatio: Math.round((window.devicePixelRatio || 1) * 100) / 100,
    language: navigator.language || '',
    touch: navigator.maxTouchPoints > 0,
  };
}

async function videoInputs() {
  if (!navigator.mediaDevices?.enumerateDevices) return null;
  try {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  } catch (error) {
    return null;
  }
}

/** The indicators object; ``stream`` (when open) names the camera actually used. */
export async function collectIndicators(stream = null) {
  const inputs = await videoInputs();
  const trackLabel = stream?.getVideoTracks?.()[0]?.label || '';
  const labels = [trackLabel, ...(inputs || []).map((d) => d.label || '')];
  const flags = [];
  const indicators = {
    webdriver: navigator.webdriver === true,
    headlessUserAgent: HEADLESS_UA.test(navigator.userAgent),
    mediaDevices: Boolean(navigator.mediaDevices?.getUserMedia),
    videoInputs: inputs ? inputs.length : 0,
    virtualCamera: labels.some((label) => VIRTUAL_CAMERA.test(label)),
    pluginsLength: navigator.plugins ? navigator.plugins.length : 0,
    languages: navigator.languages ? navigator.languages.length : 0,
    hardwareConcurrency: navigator.hardwareConcurrency || 0,
    touchPoints: navigator.maxTouchPoints || 0,
    screenMatchesWindow: screen.width >= window.innerWidth && screen.height >= window.innerHeight,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || '',
  };
  if (indicators.webdriver) flags.push('WEBDRIVER');
  if (indicators.headlessUserAgent) flags.push('HEADLESS');
  if (indicators.virtualCamera) flags.push('VIRTUAL_CAMERA');
  if (!indicators.mediaDevices || (inputs && !inputs.length)) flags.push('NO_MEDIA_DEVICES');
  if (!indicators.languages) flags.push('NO_LANGUAGES');
  indicators.flags = flags;
  return indicators;
}
