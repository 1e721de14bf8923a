package logging

import "github.com/sirupsen/logrus"

// EmitRedactedConfigTrace is the only sanctioned way to log that a box's
// config (the spec JSON sent to its shim) was prepared. It logs, at Trace
// level, the engine, the box ID and the JSON's length in bytes: never the
// JSON, which holds the box's secrets. A nil log does nothing.
func EmitRedactedConfigTrace(log logrus.FieldLogger, engine, boxID string, configJSON []byte) {
	if log == nil {
		return
	}
	log.WithFields(logrus.Fields{
		FieldEngine:    engine,
		FieldBoxID:     boxID,
		FieldJSONBytes: len(configJSON),
	}).Trace("box config prepared")
}
