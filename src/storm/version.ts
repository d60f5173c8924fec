// The version string written into traces and reports.
export const TOOL_VERSION = "plugstorm 0.1.0";
