// Browser integrity indicators sent with every capture and event report, in
// PrivateID's documented shape: boolean flags under ``headless``, ``virtualCamera``
// and ``browserAnomalies``. They are hints, never proof: the server computes the
// camera risk level and the session's riskEvaluation from them, and its own checks
// decide the outcome.

const VIRTUAL_CAMERA_SOFTWARE = /obs[- ]?(virtual|studio|cam)|manycam|snap camera|xsplit|droidcam|e2esoft|splitcam|camtwist|epoccam|iriun|youcam|camo\b|mmhmm|vcam/i;
const SUSPICIOUS_LABEL = /virtual|fake|dummy|emulat|\.y4m|\.mjpe?g|loopback/i;
const HEADLESS_UA = /HeadlessChrome|PhantomJS|Electron|puppeteer|playwright/i;
const MOBILE_UA = /Mobi|Android|iPhone|iPad|iPod|Windows Phone|Tablet/i;
const TABLET_UA = /iPad|Tablet|Android(?!.*Mobile)/i;
// Globals that automation tools leave behind (WebDriver, PhantomJS, Nightmare, Selenium).
const AUTOMATION_GLOBALS = ['callPhantom', '_phantom', '__nightmare', 'domAutomation',
  'domAutomationController', '_selenium', '__webdriver_evaluate', '__selenium_unwrapped',
  '__fxdriver_unwrapped', '__driver_evaluate'];

/** True on a desktop browser (iPadOS "desktop mode" counts as mobile). */
export function isDesktop() {
  const iPadDesktopMode = /Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1;
  return !MOBILE_UA.test(navigator.userAgent) && !iPadDesktopMode;
}

function browserOf(ua) {
  const known = [
    ['Edge', /Edg\/([\d.]+)/], ['Opera', /OPR\/([\d.]+)/], ['Samsung Internet', /SamsungBrowser\/([\d.]+)/],
    ['Firefox', /Firefox\/([\d.]+)/], ['Chrome', /(?:Headless)?Chrome\/([\d.]+)/],
    ['Safari', /Version\/([\d.]+).*Safari/],
  ];
  for (const [name, pattern] of known) {
    const match = pattern.exec(ua);
    if (match) return { browserType: name, browserVersion: match[1].split('.')[0] };
  }
  return { browserType: 'Other', browserVersion: '' };
}

function osOf(ua) {
  const known = [
    ['Android', /Android ([\d.]+)/], ['iOS', /(?:iPhone|iPad|iPod).*OS ([\d_]+)/],
    ['Windows', /Windows NT ([\d.]+)/], ['macOS', /Mac OS X ([\d_.]+)/], ['ChromeOS', /CrOS \S+ ([\d.]+)/],
    ['Linux', /Linux()/],
  ];
  for (const [name, pattern] of known) {
    const match = pattern.exec(ua);
    if (match) return { osName: name, osVersion: (match[1] || '').replace(/_/g, '.') };
  }
  return { osName: 'Other', osVersion: '' };
}

const clip = (text) => String(text || '').slice(0, 64);

/** What the page tells the server about the device (no identifiers). */
export function deviceInfo() {
  const ua = navigator.userAgent;
  const { browserType, browserVersion } = browserOf(ua);
  const { osName, osVersion } = osOf(ua);
  const desktop = isDesktop();
  return {
    browserType: clip(browserType),
    browserVersion: clip(browserVersion),
    osName: clip(osName),
    osVersion: clip(osVersion),
    deviceType: desktop ? 'desktop' : (TABLET_UA.test(ua) ? 'tablet' : 'mobile'),
    screenDimensions: { width: Math.round(screen.width) || 0, height: Math.round(screen.height) || 0 },
    orientation: (screen.orientation?.type || '').startsWith('landscape')
      || (!screen.orientation && window.innerWidth > window.innerHeight) ? 'landscape' : 'portrait',
    pixelRatio: Math.round((window.devicePixelRatio || 1) * 100) / 100,
    platform: clip(navigator.userAgentData?.platform || navigator.platform || ''),
    language: clip(navigator.language || ''),
    touch: navigator.maxTouchPoints > 0,
  };
}

async function videoInputs() {
  if (!navigator.mediaDevices?.enumerateDevices) return { inputs: null, failed: false };
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return { inputs: devices.filter((d) => d.kind === 'videoinput'), failed: false };
  } catch (error) {
    return { inputs: null, failed: true };
  }
}

function supportLevel() {
  const camera = Boolean(navigator.mediaDevices?.getUserMedia);
  const crypto = Boolean(window.crypto?.subtle);
  if (camera && crypto && typeof WebAssembly === 'object') return 'full';
  return camera && crypto ? 'partial' : 'none';
}

/** The indicators object; ``stream`` (when open) names the camera actually used. */
export async function collectIndicators(stream = null) {
  const ua = navigator.userAgent;
  const { inputs, failed } = await videoInputs();
  const trackLabel = stream?.getVideoTracks?.()[0]?.label || '';
  const labels = [trackLabel, ...(inputs || []).map((d) => d.label || '')].filter(Boolean);
  const mobileUa = MOBILE_UA.test(ua);
  const chromeUa = /Chrome\//.test(ua) && !/Edg\/|OPR\//.test(ua);
  return {
    headless: {
      webdriver: navigator.webdriver === true,
      headlessUserAgent: HEADLESS_UA.test(ua),
      noPlugins: !mobileUa && (!navigator.plugins || navigator.plugins.length === 0),
      noLanguages: !navigator.languages || navigator.languages.length === 0,
      windowSizeMismatch: window.outerWidth === 0 || window.outerHeight === 0
        || screen.width < window.innerWidth || screen.height < window.innerHeight,
    },
    virtualCamera: {
      virtualCameraSoftware: labels.some((label) => VIRTUAL_CAMERA_SOFTWARE.test(label)),
      suspiciousLabels: labels.some((label) => SUSPICIOUS_LABEL.test(label)),
      noMediaDevices: !navigator.mediaDevices?.getUserMedia || (inputs !== null && inputs.length === 0),
      mediaDevicesError: failed,
      browserCompatibility: { browser: browserOf(ua).browserType.slice(0, 32), supportLevel: supportLevel() },
    },
    browserAnomalies: {
      missingWebAPIs: !window.crypto?.subtle || !window.fetch || !window.Promise || !window.URL,
      inconsistentFingerprint: (mobileUa && navigator.maxTouchPoints === 0)
        || (chromeUa && typeof window.chrome === 'undefined'),
      automationProperties: AUTOMATION_GLOBALS.some((name) => name in window)
        || Object.keys(document).some((key) => key.startsWith('$cdc_') || key.startsWith('$wdc_')),
    },
  };
}
