// The Runlog SDK is being built (issue: The Runlog SDK and the control plane).
export {};
